"""Defended models as cached artifacts.

A defence (``iqabench.contracts.Defense``) either retrains a model with a
changed loss (``kind = "training"``: it starts from a fresh, seeded random
init -- with the model's pretrained backbone, when it has one:
:func:`.build.training_start` -- and the model's own recipe) or transforms the trained model
(``kind = "post-training"``: it starts from the weights the cell names).
The result is saved once as weights plus a model card -- test PLCC/SROCC/
RMSE -- under a key of everything that produced it, and loaded like any
other weights file, so attacks (including universal ones, whose artifacts
are keyed by the weights) simply see another model.  The card leaves out
the clean ``score_range`` (scoring every image of every split costs more
than a defence's own work on the default model): a defended model is
normalised with its like-for-like baseline's range (:func:`baseline_spec`,
:func:`iqabench.experiments.components.cell_model`).

Other experiments (e.g. a backdoored victim) call :func:`cached_defense`
with their own starting model and data, and their own key
(:func:`iqabench.experiments.backdoor.defended.defended_victim`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..artifacts import building, cache_dir, canonical_json, config_key
from ..contracts import CellSpec, Defense, IQADataset, IQAModel, RunContext
from ..data.benign import BENIGN_DRAW
from ..errors import DatasetError, IQABenchError
from ..registry import NO_DEFENSE, baseline_of, build_defense
from .build import build_model, card_path, model_identity, training_start
from .cards import backbone_record, save_with_card
from .trained import resolve_weights

TRAIN_SPLIT = "train"


def spec_identity(spec: CellSpec) -> str:
    """A cell spec with its defence parameters resolved (two spellings of one cell compare equal)."""
    params = {} if spec.defense == NO_DEFENSE else build_defense(spec.defense, spec.defense_params).params
    return canonical_json({**asdict(spec), "defense_params": params})


def baseline_spec(spec: CellSpec) -> CellSpec | None:
    """The like-for-like baseline cell of a defended ``spec``
    (:func:`iqabench.registry.baseline_of`); None when undefended or when the
    cell is its own baseline (NT at ``lam = 0``)."""
    if spec.defense == NO_DEFENSE:
        return None
    base = baseline_of(spec.defense, spec.defense_params)
    twin = replace(spec, defense=base["name"], defense_params=base["params"])
    return None if spec_identity(twin) == spec_identity(spec) else twin


def defense_identity(name: str, defense: Defense) -> dict[str, Any]:
    """The ``"defense"`` entry of a defended artifact's key: the registered name, the
    parameters and -- for a defence that declares one -- its ``version`` (a class
    attribute naming what it computes beyond its parameters; absent: keys as before)."""
    version = getattr(defense, "version", "")
    return {"name": name, "params": defense.params, **({"version": version} if version else {})}


def recipe_of(model: IQAModel, defense: Defense) -> dict | None:
    """The recipe a training defence (or fine-tuning) follows, for the cache key."""
    try:
        return asdict(model.recipe(getattr(defense, "profile", "default")))
    except IQABenchError:
        if defense.kind == "training":
            raise
        return None


def apply_defense(defense: Defense, model: IQAModel, dataset: IQADataset, path: Path, ctx: RunContext, *,
                  info: dict | None = None, score_range: bool = False) -> dict:
    """Run ``defense`` on ``model`` (changed in place) with ``ctx``'s seed and
    save weights + card at ``path`` (``score_range``: see
    :func:`iqabench.models.cards.save_with_card`).

    ``model`` is a fresh model for a training-time defence and the trained
    (possibly backdoored) model for a post-training one; ``dataset`` is the
    data whose ``train`` split the defence uses (for post-training
    defences, clean data: they take their benign fraction of it).
    """
    if TRAIN_SPLIT not in dataset.splits():
        raise DatasetError(f"defense {defense.name!r} needs a {TRAIN_SPLIT!r} split; dataset {dataset.name!r} "
                           f"has {', '.join(dataset.splits())}")
    summary = defense.apply(model, dataset, seed=ctx.seed, device=ctx.device, progress=ctx.progress)
    model.requires_grad_(False)
    return save_with_card(model.eval(), dataset, path, ctx.device, {
        "seed": ctx.seed, **(info or {}), **backbone_record(model),
        "defense": {"name": defense.name, "kind": defense.kind, "params": getattr(defense, "params", {}),
                    "summary": summary},
    }, score_range=score_range)


def defended_model(spec: CellSpec, dataset: IQADataset, ctx: RunContext) -> IQAModel:
    """The model of cell ``spec`` defended with its ``defense``, trained/transformed once and cached.

    The returned model carries ``model.defense`` (name, kind, params, the
    artifact key) for cell configurations and the leaderboard.
    """
    return defended_artifact(spec, dataset, ctx)[0]


def defended_artifact(spec: CellSpec, dataset: IQADataset, ctx: RunContext,
                      score_range: bool = False) -> tuple[IQAModel, Path]:
    """:func:`defended_model` and the path of its cached weights (for callers that record it).

    A training-time defence trains a fresh model on ``dataset``; a
    post-training one transforms the weights ``spec`` names (a ``trained:``
    form: the model trained on ``dataset``), using
    ``dataset``'s benign ``train`` split.  Keyed by the start model (with its
    weights' digest), the data, the seed, the defence (with its version) and
    the recipe it follows; a post-training defence also by the benign draw
    (:data:`iqabench.data.benign.BENIGN_DRAW`).
    """
    defense = build_defense(spec.defense, spec.defense_params)
    if defense.kind == "training":  # a fresh model, as its recipe starts (pretrained backbone if any)
        start = training_start(spec.model, spec.model_params, ctx.device, ctx.seed)
    else:
        weights = resolve_weights((spec.model, spec.model_params), spec.weights, (spec.dataset, spec.dataset_params),
                                  ctx, dataset)  # trained:seed=N: the model trained on this dataset
        start = build_model(spec.model, spec.model_params, weights, ctx.device, ctx.seed)
    config = {
        "model": model_identity(start), "dataset": dataset.fingerprint(), "seed": ctx.seed,
        "defense": defense_identity(spec.defense, defense), "recipe": recipe_of(start, defense),
    }
    if defense.kind == "post-training":  # it uses the defender's benign part of the train split
        config["benign_draw"] = BENIGN_DRAW
    return cached_defense(defense, spec, config, lambda: start, lambda: dataset, ctx,
                          info={"start": model_identity(start), "recipe": config["recipe"]}, score_range=score_range)


def cached_defense(defense: Defense, spec: CellSpec, config: dict, start: Callable[[], IQAModel],
                   data: Callable[[], IQADataset], ctx: RunContext, *, info: dict | None = None,
                   score_range: bool = False) -> tuple[IQAModel, Path]:
    """``defense`` applied once to ``start()`` with ``data()`` and cached under ``config``'s key.

    The caller's ``config`` says what the result depends on (start weights,
    data, seed, and ``"defense": {"name": registered name, "params": ...}``,
    whose name also names the file); ``start`` and ``data`` are only called on a cache
    miss, so a rerun neither rebuilds expensive data (e.g. poisoned images)
    nor retrains.  Returns the loaded defended model of ``spec.model`` --
    carrying ``model.defense`` for cell configurations -- and its weights path.
    """
    name, key = config["defense"]["name"], config_key(config)
    path = cache_dir("defended") / f"{spec.model}-{name}-{key}.safetensors"
    with building(path, lambda: path.exists() and card_path(path).exists()) as missing:  # once among runs
        if missing:
            apply_defense(defense, start(), data(), path, ctx, info=info, score_range=score_range)
    model = build_model(spec.model, spec.model_params, str(path), ctx.device, ctx.seed)
    model.defense = {"name": name, "kind": defense.kind, "params": defense.params, "artifact": key}
    return model, path
