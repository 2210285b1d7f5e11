"""Views of a dataset: a split restricted to named items, a split that serves
poisoned images and labels.

A backdoor attack replaces some training images (and, for poison-label
attacks, their labels); the victim is then trained by the unchanged generic
trainer (:func:`iqabench.models.training.train_model`), exactly as an
unsuspecting trainer would train on the data it was given.  These views hold
no attack: they wrap a dataset so that one split serves a subset
(:class:`SubsetDataset`: a surrogate's poison subset, a defender's benign
part) or the poisoned images and labels (:class:`PoisonedDataset`).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..artifacts import config_key
from ..contracts import IQADataset, Item, Poison
from ..errors import DatasetError


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
