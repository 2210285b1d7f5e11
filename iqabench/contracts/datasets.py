"""The dataset contract: named images with a MOS, in named splits."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch


@dataclass(frozen=True)
class Item:
    """One image of a dataset: its name, MOS (None without one) and source.

    ``ref`` and ``group`` are the strata a limited run samples over
    (:func:`iqabench.data.sampling.subset`): the content an image shows and the
    kind of image it is (e.g. its distortion type, ``"pristine"`` for a
    reference; ``""`` when the dataset has no such grouping).
    """

    name: str
    mos: float | None
    source: Any = None  # a path, or an index into an in-memory array
    ref: str = ""  # reference content id (for content-disjoint splits)
    group: str = ""  # e.g. the distortion type (a stratum for limited runs)


class IQADataset:
    """Named items with named splits; images validated on load.

    ``mos_range`` is the nominal range of the dataset's labels.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    mos_range: tuple[float, float] = (0.0, 100.0)

    def splits(self) -> list[str]:
        raise NotImplementedError

    def items(self, split: str) -> Sequence[Item]:
        raise NotImplementedError

    def load(self, item: Item) -> torch.Tensor:
        """The image as float32 3xHxW in [0,1]."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Identifies the data content (for cache keys); default: the name."""
        return self.name

