"""The run context: what every step of a run shares, passed as one object.

Built once -- by ``iqabench run``, by the Python API, or by a test -- and
handed down through the experiments, the models they build and train, and
the defences; no function passes the device, the seed or the progress
switch along by hand.  Within a run each cell works in
:meth:`RunContext.for_cell` (the cell's own seed); models and datasets
built by one cell are reused by the next through :meth:`RunContext.reuse`.

The artifact cache (trained models, UAPs, triggers, clean ranges) is not a
field: it is process-wide (``$IQABENCH_CACHE``, :func:`iqabench.artifacts.cache_dir`)
because plugins reach it without a context.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")


@dataclass
class RunContext:
    """``device`` (cpu or cuda[:N]); ``seed`` (of the cell at hand); ``progress``
    (show progress bars); ``force`` (recompute finished cells); ``store`` (the
    results store, :class:`iqabench.run.store.Store`, on a run); ``bar`` (the
    run's live progress display: experiments add their tasks to it, nested
    displays such as a trainer's pause it); ``gallery`` (thumbnails an evasion
    cell keeps of its images with the largest gain, beside the store: the
    report's galleries; 0: none -- never part of a key); ``save_images`` (a
    folder that receives each attacked image as the file its cell scored, or None)."""

    device: str = "cpu"
    seed: int = 0
    progress: bool = True
    force: bool = False
    store: Any = None
    bar: Any = None
    gallery: int = 3
    save_images: Any = None
    built: dict = field(default_factory=dict, repr=False)

    def for_cell(self, spec: Any) -> "RunContext":
        """This context with the seed of cell ``spec`` (sharing what was built)."""
        return replace(self, seed=spec.seed)

    def reuse(self, key: Any, build: Callable[[], T]) -> T:
        """The object built earlier in this run for ``key`` (a JSON-able
        configuration), or ``build()`` now, kept for the next cell."""
        from ..artifacts import canonical_json

        text = canonical_json(key)
        if text not in self.built:
            self.built[text] = build()
        return self.built[text]


#: the folder beside the results store that holds the cells' gallery thumbnails
GALLERY_FOLDER = "images"


def gallery_dir(store_path: Any, key: str) -> Path:
    """Where the gallery of cell ``key`` of the store at ``store_path`` lives."""
    return Path(store_path).parent / GALLERY_FOLDER / key
