"""Defended models as cached artifacts.

A defence (``iqabench.contracts.Defense``) either retrains a model with a
changed loss (``kind = "training"``: it starts from a fresh, seeded random
init and the model's own recipe) or transforms the trained model
(``kind = "post-training"``: it starts from the weights the cell names).
The result is saved once as weights plus a model card -- test PLCC/SROCC/
RMSE -- under a key of everything that produced it, and loaded like any
other weights file, so attacks (including universal ones, whose artifacts
are keyed by the weights) simply see another model.  The card leaves out
the clean ``score_range`` (scoring every image of every split costs more
than a defence's own work on the default model): the runner normalises a
defended model with its baseline's range
(:meth:`iqabench.runner.Runner.normalise_like_baseline`).

Other experiments (e.g. a backdoored victim) call :func:`apply_defense`
with their own starting model and data, and key the result themselves::

    d = build_defense("finetune", {"fraction": 0.2})   # or "prune", {"rate": 0.4}
    apply_defense(d, victim, clean_data, seed, path)    # post-training: the trained victim
    d = build_defense("nt")                             # training-time: a fresh model and
    apply_defense(d, fresh, poisoned_data, seed, path)  # the data the victim trains on
    # then build_model(name, params, str(path)) -- or use ``victim`` as it is
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .artifacts import cache_dir, config_key
from .benign import BENIGN_DRAW
from .contracts import Defense, IQADataset, IQAModel
from .errors import DatasetError, IQABenchError, ParameterError
from .models import build_model, card_path, model_identity
from .params import resolve_params
from .plugins import lookup

NONE = "none"
TRAIN_SPLIT = "train"


def build_defense(name: str, params: dict[str, Any] | None = None) -> Defense:
    """The registered defence ``name`` with its parameters resolved (errors name both)."""
    entry = lookup("defense", name)
    resolved = resolve_params(entry.obj, params or {}, f"defense {name!r}")
    defense = entry.obj(**resolved)
    defense.params = resolved
    return defense


def baseline_of(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "params"}`` of the like-for-like baseline of defence ``name`` with ``params``.

    A training-time defence names itself with its effect switched off (same
    recipe, seed and pipeline: :meth:`~iqabench.contracts.Defense.baseline_params`);
    otherwise the baseline is the undefended model, ``{"name": "none", "params": {}}``.
    """
    switch_off = build_defense(name, params).baseline_params()
    if switch_off is None:
        return {"name": NONE, "params": {}}
    return {"name": name, "params": {**params, **switch_off}}

def defense_identity(name: str, defense: Defense) -> dict[str, Any]:
    """The ``"defense"`` entry of a defended artifact's key: the registered name, the
    parameters and -- for a defence that declares one -- its ``version`` (a class
    attribute naming what it computes beyond its parameters; absent: keys as before)."""
    version = getattr(defense, "version", "")
    return {"name": name, "params": defense.params, **({"version": version} if version else {})}


def _recipe_of(model: IQAModel, defense: Defense) -> dict | None:
    """The recipe a training defence (or fine-tuning) follows, for the cache key."""
    try:
        return asdict(model.recipe(getattr(defense, "profile", "default")))
    except IQABenchError:
        if defense.kind == "training":
            raise
        return None


def apply_defense(defense: Defense, model: IQAModel, dataset: IQADataset, seed: int, path: Path,
                  device: str = "cpu", progress: bool = True, info: dict | None = None,
                  score_range: bool = False) -> dict:
    """Run ``defense`` on ``model`` (changed in place) and save weights + card at ``path``
    (``score_range``: see :func:`iqabench.training.save_with_card`).

    ``model`` is a fresh model for a training-time defence and the trained
    (possibly backdoored) model for a post-training one; ``dataset`` is the
    data whose ``train`` split the defence uses (for post-training
    defences, clean data: they take their benign fraction of it).
    """
    from .training import save_with_card

    if TRAIN_SPLIT not in dataset.splits():
        raise DatasetError(f"defense {defense.name!r} needs a {TRAIN_SPLIT!r} split; dataset {dataset.name!r} "
                           f"has {', '.join(dataset.splits())}")
    summary = defense.apply(model, dataset, seed=seed, device=device, progress=progress)
    model.requires_grad_(False)
    return save_with_card(model.eval(), dataset, path, device, {
        "seed": seed, **(info or {}),
        "defense": {"name": defense.name, "kind": defense.kind, "params": getattr(defense, "params", {}),
                    "summary": summary},
    }, score_range=score_range)


def defended_model(model_name: str, model_params: dict[str, Any], weights: str, dataset: IQADataset,
                   defense_name: str, defense_params: dict[str, Any], seed: int = 0, device: str = "cpu",
                   progress: bool = True, force: bool = False) -> IQAModel:
    """Model ``model_name`` defended with ``defense_name``, trained/transformed once and cached.

    The returned model carries ``model.defense`` (name, kind, params, the
    artifact key) for cell configurations and the leaderboard.
    """
    return defended_artifact(model_name, model_params, weights, dataset, defense_name, defense_params, seed,
                             device, progress, force)[0]


def defended_artifact(model_name: str, model_params: dict[str, Any], weights: str, dataset: IQADataset,
                      defense_name: str, defense_params: dict[str, Any], seed: int = 0, device: str = "cpu",
                      progress: bool = True, force: bool = False, score_range: bool = False) -> tuple[IQAModel, Path]:
    """:func:`defended_model` and the path of its cached weights (for callers that record it).

    A training-time defence trains a fresh model on ``dataset``; a
    post-training one transforms ``weights`` using ``dataset``'s benign
    ``train`` split.  Keyed by the start model (with its weights' digest),
    the data, the seed, the defence (with its version) and the recipe it
    follows; a post-training defence also by the benign draw
    (:data:`iqabench.benign.BENIGN_DRAW`).
    """
    defense = build_defense(defense_name, defense_params)
    start = build_model(model_name, model_params, "random" if defense.kind == "training" else weights, device, seed)
    config = {
        "model": model_identity(start), "dataset": dataset.fingerprint(), "seed": seed,
        "defense": defense_identity(defense_name, defense), "recipe": _recipe_of(start, defense),
    }
    if defense.kind == "post-training":  # it uses the defender's benign part of the train split
        config["benign_draw"] = BENIGN_DRAW
    return cached_defense(defense, model_name, model_params, config, lambda: start, lambda: dataset, seed,
                          device, progress, force, info={"start": model_identity(start), "recipe": config["recipe"]},
                          score_range=score_range)


def cached_defense(defense: Defense, model_name: str, model_params: dict[str, Any], config: dict,
                   start: Callable[[], IQAModel], data: Callable[[], IQADataset], seed: int = 0,
                   device: str = "cpu", progress: bool = True, force: bool = False,
                   info: dict | None = None, score_range: bool = False) -> tuple[IQAModel, Path]:
    """``defense`` applied once to ``start()`` with ``data()`` and cached under ``config``'s key.

    The caller's ``config`` says what the result depends on (start weights,
    data, seed, and ``"defense": {"name": registered name, "params": ...}``,
    whose name also names the file); ``start`` and ``data`` are only called on a cache
    miss, so a rerun neither rebuilds expensive data (e.g. poisoned images)
    nor retrains.  Returns the loaded defended model -- carrying
    ``model.defense`` for cell configurations -- and its weights path.
    """
    name, key = config["defense"]["name"], config_key(config)
    path = cache_dir("defended") / f"{model_name}-{name}-{key}.safetensors"
    if force or not (path.exists() and card_path(path).exists()):
        apply_defense(defense, start(), data(), seed, path, device, progress, info=info, score_range=score_range)
    model = build_model(model_name, model_params, str(path), device, seed)
    model.defense = {"name": name, "kind": defense.kind, "params": defense.params, "artifact": key}
    return model, path


def parse_defense_params(pairs: dict[str, Any], defenses: list[str]) -> dict[str, dict[str, Any]]:
    """``{"nt.lam": 0, "rate": 0.4}`` -> per-defence parameters.

    ``NAME.KEY`` targets one defence; a bare ``KEY`` goes to every listed
    defence except ``none`` (each must then have it).
    """
    real = [d for d in defenses if d != NONE]
    out: dict[str, dict[str, Any]] = {d: {} for d in defenses}
    for key, value in pairs.items():
        if "." in key:
            name, param = key.split(".", 1)
            if name not in real:
                raise ParameterError(f"--defense-param {key}={value}: defence {name!r} is not among "
                                     f"--defense {', '.join(real) or NONE}")
            out[name][param] = value
        else:
            if not real:
                raise ParameterError(f"--defense-param {key}={value} given without a --defense")
            for name in real:
                out[name][key] = value
    return out
