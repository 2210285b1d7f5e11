"""The dataset and the model of a cell, built once per run and shared by its cells.

Ten attacks on one model build it once: :meth:`iqabench.contracts.RunContext.reuse`
keeps what was built under the configuration that built it.  A defended
model is trained or transformed once and cached on disk as well
(:mod:`iqabench.models.defended`).
"""
from __future__ import annotations

from ..contracts import CellSpec, IQADataset, IQAModel, RunContext
from ..errors import DatasetError
from ..models.build import build_model
from ..models.defended import defended_model
from ..registry import NO_DEFENSE, build


def cell_dataset(spec: CellSpec, ctx: RunContext) -> IQADataset:
    """``spec``'s dataset (built once per run), which must have ``spec.split``."""
    dataset = ctx.reuse(["dataset", spec.dataset, spec.dataset_params],
                        lambda: build("dataset", spec.dataset, spec.dataset_params))
    if spec.split not in dataset.splits():
        raise DatasetError(f"dataset {spec.dataset!r} has no split {spec.split!r} "
                           f"(splits: {', '.join(dataset.splits())})")
    return dataset


def cell_model(spec: CellSpec, ctx: RunContext) -> IQAModel:
    """``spec``'s model with its weights -- defended with ``spec.defense`` unless
    that is ``none`` -- frozen (attacks need input gradients only), built
    once per run."""
    def make() -> IQAModel:
        if spec.defense == NO_DEFENSE:
            model = build_model(spec.model, spec.model_params, spec.weights, ctx.device, spec.seed)
        else:  # trained or transformed once, then cached (iqabench.models.defended)
            model = defended_model(spec, cell_dataset(spec, ctx), ctx)
        model.requires_grad_(False)
        return model

    key = [spec.model, spec.model_params, spec.weights, spec.seed, spec.defense, spec.defense_params]
    return ctx.reuse(["model", *key], make)
