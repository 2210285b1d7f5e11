"""Poisoned training sets: the generic data side of a backdoor attack.

A backdoor attack replaces some training images (and, for poison-label
attacks, their labels); the victim is then trained by the unchanged generic
trainer (:func:`iqabench.training.train_model`), exactly as an unsuspecting
trainer would train on the data it was given.  This module holds no attack:
it picks the poison subset, describes a poisoning (:class:`Poison`) and wraps
a dataset so that its training split serves the poisoned images and labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from .artifacts import config_key
from .contracts import IQADataset, Item
from .errors import DatasetError, ParameterError

#: the nominal MOS span on which backdoor shifts are specified (REFERENCES.md 2: 0-100)
REFERENCE_SPAN = 100.0


def mos_scale(dataset: IQADataset) -> float:
    """How much wider the dataset's MOS range is than 0-100: ``Delta_max = 40``
    on 0-100 becomes ``40 * scale`` on the dataset's own range."""
    lo, hi = dataset.mos_range
    if not hi > lo:
        raise DatasetError(f"dataset {dataset.name!r} has an empty MOS range {dataset.mos_range}")
    return (hi - lo) / REFERENCE_SPAN


def poison_indices(n: int, ratio: float, seed: int) -> list[int]:
    """``round(ratio * n)`` distinct indices of ``0..n-1``, seeded, sorted.

    The same subset serves the surrogate, the trigger search and the
    poisoning (REFERENCES.md 2: the 20% poison subset).
    """
    if not 0.0 < ratio <= 1.0:
        raise ParameterError(f"poison ratio must be in (0, 1], got {ratio!r}")
    k = int(round(ratio * n))
    if k < 1:
        raise DatasetError(f"poison ratio {ratio} of {n} training images selects no image")
    gen = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=gen)[:k].tolist())


@dataclass
class Poison:
    """What an attack did to the training split.

    ``images`` maps an item name to its poisoned image (3xHxW in [0,1]),
    ``labels`` to its (possibly shifted) label, ``alphas`` to the trigger
    strength it was given.  ``info`` records how (for the manifest).
    """

    images: dict[str, torch.Tensor]
    labels: dict[str, float]
    alphas: dict[str, float]
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.images) != set(self.labels) or set(self.images) != set(self.alphas):
            raise ValueError("a Poison needs an image, a label and an alpha for every poisoned item")


class SubsetDataset(IQADataset):
    """``base`` with ``split`` restricted to the items named in ``names``
    (the BAIQA surrogate trains on the poison subset, fine-tuning on the
    defender's benign part)."""

    def __init__(self, base: IQADataset, split: str, names: Sequence[str]) -> None:
        self.base, self.split, self.names = base, split, frozenset(names)
        self.name = base.name
        self.mos_range = base.mos_range

    def splits(self) -> list[str]:
        return self.base.splits()

    def items(self, split: str) -> Sequence[Item]:
        items = self.base.items(split)
        return [it for it in items if it.name in self.names] if split == self.split else items

    def load(self, item: Item) -> torch.Tensor:
        return self.base.load(item)

    def fingerprint(self) -> str:
        return f"{self.base.fingerprint()}:{self.split}-subset-{config_key(sorted(self.names))}"


class PoisonedDataset(IQADataset):
    """``base`` whose ``split`` serves the poisoned images and labels of
    ``poison``; every other item and split is untouched."""

    def __init__(self, base: IQADataset, split: str, poison: Poison, key: str) -> None:
        self.base, self.split, self.poison, self.key = base, split, poison, key
        self.name = base.name
        self.mos_range = base.mos_range
        names = {it.name for it in base.items(split)}
        missing = sorted(set(poison.images) - names)
        if missing:
            raise DatasetError(f"dataset {base.name!r}: poisoned item {missing[0]!r} is not in split {split!r}")

    def splits(self) -> list[str]:
        return self.base.splits()

    def items(self, split: str) -> Sequence[Item]:
        items = self.base.items(split)
        if split != self.split:
            return items
        p = self.poison
        return [Item(it.name, p.labels[it.name], ("poison", it.name), it.ref) if it.name in p.images else it
                for it in items]

    def load(self, item: Item) -> torch.Tensor:
        if isinstance(item.source, tuple) and item.source[:1] == ("poison",):
            return self.poison.images[item.source[1]]
        return self.base.load(item)

    def fingerprint(self) -> str:
        return f"{self.base.fingerprint()}:poisoned-{self.key}"
