"""The benign part of a training split that post-training defences may use.

BAIQA's defences (REFERENCES.md 2) fine-tune and prune with 20% of the
benign training data: the defender owns a small clean set, not the whole
training set.  The part is a seeded random choice of labelled items, so the
same seed always names the same images (and tests can check exactly which
images a defence saw).

The defender does not know which images the attacker poisoned, so the draw
is independent of the poison subset (:func:`iqabench.experiments.backdoor.poisoning.poison_indices`,
drawn with the same experiment seed): it comes from its own stream, seeded
with a hash of ``("benign", seed)``, and overlaps the poison subset only by
chance (``ratio x fraction x n`` images on average).  The first version drew
``randperm(n)`` with the seed itself -- the very permutation the poison
subset is cut from, so with equal fractions the defender held exactly the
clean copies of the poisoned images.  :data:`BENIGN_DRAW` names the draw in
the keys of everything made from it.
"""
from __future__ import annotations

import torch

from ..artifacts import config_key
from ..contracts import IQADataset, Item
from ..errors import DatasetError, ParameterError

TRAIN_SPLIT = "train"
#: the version of the draw (part of the keys of post-training defences' artifacts)
BENIGN_DRAW = "independent-v1"


def benign_seed(seed: int) -> int:
    """The seed of the benign draw's own stream: 63 bits of a hash of ``("benign", seed)``."""
    return int(config_key(["benign", seed]), 16) & (2**63 - 1)


def benign_items(dataset: IQADataset, fraction: float, seed: int, split: str = TRAIN_SPLIT) -> list[Item]:
    """``round(fraction * n)`` (at least one) labelled items of ``split``, chosen with
    ``seed`` from the benign stream (:func:`benign_seed`)."""
    if not 0 < fraction <= 1:
        raise ParameterError(f"benign fraction must be in (0, 1], got {fraction!r}")
    if split not in dataset.splits():
        raise DatasetError(f"dataset {dataset.name!r} has no {split!r} split for a defence to use "
                           f"(splits: {', '.join(dataset.splits())})")
    items = [it for it in dataset.items(split) if it.mos is not None]
    if not items:
        raise DatasetError(f"dataset {dataset.name!r}: split {split!r} has no labelled images")
    k = max(1, round(fraction * len(items)))
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(benign_seed(seed)))[:k]
    return [items[i] for i in sorted(order.tolist())]
