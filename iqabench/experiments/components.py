"""The dataset and the model of a cell, built once per run and shared by its cells.

Ten attacks on one model build it once: :meth:`iqabench.contracts.RunContext.reuse`
keeps what was built under the configuration that built it.  A defended
model is trained or transformed once and cached on disk as well
(:mod:`iqabench.models.defended`).
"""
from __future__ import annotations

from ..contracts import CellSpec, IQADataset, IQAModel, RunContext
from ..data.shipping import run_dataset
from ..errors import DatasetError
from ..models.build import build_model, model_identity, parse_trained
from ..models.defended import baseline_spec, defended_model
from ..models.purified import PurifiedModel
from ..models.score_range import ensure_score_range
from ..models.trained import resolve_weights
from ..registry import NO_DEFENSE, build_defense


def cell_dataset(spec: CellSpec, ctx: RunContext) -> IQADataset:
    """``spec``'s dataset (built once per run; on a worker, from its copy of the
    files when it cannot see them, :mod:`iqabench.data.shipping`), which must have ``spec.split``."""
    dataset = run_dataset(ctx, spec.dataset, spec.dataset_params)
    if spec.split not in dataset.splits():
        raise DatasetError(f"dataset {spec.dataset!r} has no split {spec.split!r} "
                           f"(splits: {', '.join(dataset.splits())})")
    return dataset


def cell_model(spec: CellSpec, ctx: RunContext) -> IQAModel:
    """``spec``'s model with its weights -- defended with ``spec.defense`` unless
    that is ``none``, then normalised like its baseline -- frozen (attacks
    need input gradients only), built once per run.  An input-purification
    defence wraps the undefended cell's own model (:mod:`iqabench.models.purified`).
    Weights ``trained:seed=N[,profile=P]`` are the model trained on the cell's
    dataset (:func:`iqabench.models.trained.resolve_weights`: trained once, cached)."""
    def make() -> IQAModel:
        if spec.defense == NO_DEFENSE:
            model = build_model(spec.model, spec.model_params, cell_weights(spec, ctx), ctx.device, spec.seed)
        elif (defense := build_defense(spec.defense, spec.defense_params)).kind == "inference":
            model = PurifiedModel(cell_model(baseline_spec(spec), ctx), defense)
            model.defense = {"name": spec.defense, "kind": defense.kind, "params": defense.params}
            normalise_like_baseline(model, spec, ctx)
        else:  # trained or transformed once, then cached (iqabench.models.defended)
            model = defended_model(spec, cell_dataset(spec, ctx), ctx)
            normalise_like_baseline(model, spec, ctx)
        model.requires_grad_(False)
        return model

    key = [spec.model, spec.model_params, spec.weights, spec.seed, spec.defense, spec.defense_params]
    if spec.defense != NO_DEFENSE or parse_trained(spec.weights) is not None:  # made from the cell's data
        key += [spec.dataset, spec.dataset_params]
    return ctx.reuse(["model", *key], make)


def cell_weights(spec: CellSpec, ctx: RunContext) -> str:
    """``spec.weights`` as :func:`~iqabench.models.build.build_model` takes them:
    the form ``trained:seed=N[,profile=P]`` becomes the file of the model
    trained on the cell's dataset (:func:`~iqabench.models.trained.resolve_weights`)."""
    if parse_trained(spec.weights) is None:
        return spec.weights
    return resolve_weights((spec.model, spec.model_params), spec.weights, (spec.dataset, spec.dataset_params), ctx,
                           cell_dataset(spec, ctx))


def normalise_like_baseline(model: IQAModel, spec: CellSpec, ctx: RunContext) -> None:
    """Give a defended model its baseline's fixed clean range (recorded in its cell key).

    Normalised scores of a defended row and of its baseline row are then one
    linear map of the raw scores, so their differences are the defence's
    effect and not a change of units -- a defence that flattens the score
    (strong NT) would otherwise have a narrow range of its own that inflates
    every normalised gain.  The baseline's range is its card's or, for a
    model without one (NT at ``lam = 0``, its own baseline), the cached range
    of the stratified reference subset
    (:func:`~iqabench.models.score_range.ensure_score_range`).
    """
    twin = baseline_spec(spec)
    reference = model if twin is None else cell_model(twin, ctx.for_cell(twin))
    model.score_range = ensure_score_range(reference, cell_dataset(spec, ctx), ctx.device, spec.batch_size)
    model.defense = {**model.defense, "normalised_by": model_identity(reference)}
