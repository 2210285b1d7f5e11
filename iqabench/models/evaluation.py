"""Scoring images with a model in eval mode (no model or dataset named).

``predict`` scores items in order, loading them as it goes; ``evaluate``
scores the labelled images of a split and returns them with their MOS.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..contracts import IQADataset, IQAModel, Item
from ..errors import ModelError

TEST_SPLIT = "test"


@torch.no_grad()
def predict(
    model: IQAModel, dataset: IQADataset, items: Sequence[Item], device: str = "cpu", batch_size: int = 32
) -> np.ndarray:
    """Eval-mode scores of ``items``, in order.

    Images are loaded as they are scored (memory stays at one batch); runs
    of consecutive images of equal size are batched together.
    """
    model.to(device).eval()
    out = np.empty(len(items), dtype=np.float64)
    batch: list[torch.Tensor] = []
    first = 0

    def flush() -> None:
        scores = model(torch.stack(batch).to(device))
        if not torch.isfinite(scores).all():
            raise ModelError(f"model {model.name!r} produced a non-finite score on {items[first].name!r}")
        out[first : first + len(batch)] = scores.double().cpu().numpy()

    for i, item in enumerate(items):
        x = dataset.load(item)
        model.require_size(x, f"dataset {dataset.name!r}: image {item.name!r}")
        if batch and (x.shape != batch[0].shape or len(batch) == batch_size):
            flush()
            batch, first = [], i
        batch.append(x)
    if batch:
        flush()
    return out


def evaluate(
    model: IQAModel, dataset: IQADataset, split: str = TEST_SPLIT, device: str = "cpu", batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Predictions, MOS and names of the labelled images of ``split``."""
    items = [it for it in dataset.items(split) if it.mos is not None]
    pred = predict(model, dataset, items, device, batch_size)
    mos = np.array([it.mos for it in items], dtype=np.float64)
    return pred, mos, [it.name for it in items]

