"""The benign part of a training split that post-training defences may use.

BAIQA's defences (REFERENCES.md 2) fine-tune and prune with 20% of the
benign training data: the defender owns a small clean set, not the whole
training set.  The part is a seeded random choice of labelled items, so the
same seed always names the same images (and tests can check exactly which
images a defence saw).
"""
from __future__ import annotations

import torch

from .contracts import IQADataset, Item
from .errors import DatasetError, ParameterError

TRAIN_SPLIT = "train"


def benign_items(dataset: IQADataset, fraction: float, seed: int, split: str = TRAIN_SPLIT) -> list[Item]:
    """``round(fraction * n)`` (at least one) labelled items of ``split``, chosen with ``seed``."""
    if not 0 < fraction <= 1:
        raise ParameterError(f"benign fraction must be in (0, 1], got {fraction!r}")
    if split not in dataset.splits():
        raise DatasetError(f"dataset {dataset.name!r} has no {split!r} split for a defence to use "
                           f"(splits: {', '.join(dataset.splits())})")
    items = [it for it in dataset.items(split) if it.mos is not None]
    if not items:
        raise DatasetError(f"dataset {dataset.name!r}: split {split!r} has no labelled images")
    k = max(1, round(fraction * len(items)))
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))[:k]
    return [items[i] for i in sorted(order.tolist())]
