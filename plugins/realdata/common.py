"""Shared machinery of the real IQA databases: roots, label tables, splits.

A database is a table of rows (image file, MOS, reference content, split)
read from the database's own files in its official layout.  This module
checks the layout (a missing root, label file or image folder is a
:class:`DatasetError` naming what is missing and where it was looked for),
checks that the listed images exist, and assigns splits:

1. a split file (``split_file``: CSV with an image-name column and a
   ``split`` column, e.g. ``../shared/data/baiqa/livec_split.csv``) always
   wins -- every present image must be in it; extra columns (such as
   ``in_poison_subset``) are kept and readable with :meth:`column`;
2. else the database's official split, where one exists;
3. else a seeded ratio split, content-disjoint (by reference image) for
   synthetically distorted databases.

Images are read through :func:`iqabench.data.imageio.load_image`, so a file that
cannot be decoded is an error naming it.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from iqabench.contracts import IQADataset, Item
from iqabench.errors import DatasetError
from iqabench.data.imageio import load_image

#: spellings of split names found in databases and split files
SPLIT_ALIASES = {"training": "train", "train": "train", "validation": "val", "valid": "val", "val": "val",
                 "testing": "test", "test": "test"}
#: column names that hold the image name in split files and label CSVs
NAME_COLUMNS = ("img_name", "image_name", "name", "image", "filename", "file", "dist_img", "dist_name", "img")


@dataclass
class Row:
    name: str
    mos: float | None
    path: Path
    ref: str = ""
    split: str | None = None
    group: str = ""  # e.g. the distortion type: a stratum of limited runs (Item.group)
    extra: dict[str, Any] = field(default_factory=dict)


def need_root(dataset: str, data_root: str, layout: str) -> Path:
    """The database root, or an error saying what layout was expected."""
    if not data_root:
        raise DatasetError(
            f"dataset {dataset!r} needs its files: pass --dataset-param data_root=DIR, DIR holding {layout}")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset {dataset!r}: data_root {root} is not a directory (expected {layout})")
    return root


def need(dataset: str, path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"dataset {dataset!r}: {what} not found: looked for {path}")
    return path


def first_existing(dataset: str, root: Path, candidates: Sequence[str], what: str) -> Path:
    for rel in candidates:
        if (root / rel).exists():
            return root / rel
    looked = ", ".join(str(root / c) for c in candidates)
    raise DatasetError(f"dataset {dataset!r}: {what} not found: looked for {looked}")


def read_csv(dataset: str, path: Path):
    import pandas as pd

    try:
        return pd.read_csv(path, sep=None, engine="python") if path.suffix.lower() == ".txt" else pd.read_csv(path)
    except Exception as exc:
        raise DatasetError(f"dataset {dataset!r}: cannot read {path} ({exc})") from None


def pick_column(dataset: str, path: Path, columns: Iterable[str], wanted: Sequence[str], what: str,
                default_index: int | None = None) -> str:
    cols = list(columns)
    lower = {c.lower().strip(): c for c in cols}
    for w in wanted:
        if w.lower() in lower:
            return lower[w.lower()]
    if default_index is not None and len(cols) > default_index:
        return cols[default_index]
    raise DatasetError(f"dataset {dataset!r}: {path} has no {what} column (looked for {', '.join(wanted)}; "
                       f"it has {', '.join(map(str, cols))})")


def normalise_split(dataset: str, value: Any, where: str) -> str:
    key = str(value).strip().lower()
    if key not in SPLIT_ALIASES:
        raise DatasetError(f"dataset {dataset!r}: {where}: unknown split {value!r} (train, val, test)")
    return SPLIT_ALIASES[key]


def read_split_file(dataset: str, split_file: str) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """``name -> split`` and ``name -> other columns`` from a CSV."""
    path = Path(split_file).expanduser()
    if not path.is_file():
        raise DatasetError(f"dataset {dataset!r}: split file {path} not found")
    df = read_csv(dataset, path)
    name_col = pick_column(dataset, path, df.columns, NAME_COLUMNS, "image-name", default_index=0)
    split_col = pick_column(dataset, path, df.columns, ("split", "set", "phase"), "split")
    other = [c for c in df.columns if c not in (name_col, split_col)]
    splits, extra = {}, {}
    for i, row in enumerate(df.to_dict("records"), start=2):
        name = str(row[name_col]).strip()
        splits[name] = normalise_split(dataset, row[split_col], f"{path} line {i}")
        extra[name] = {c: row[c] for c in other}
    return splits, extra


def ratio_split(keys: Iterable[str], seed: int, test: float, val: float = 0.0) -> dict[str, str]:
    """Seeded split of the distinct ``keys`` (image names or reference ids)."""
    uniq = sorted(set(keys))
    if not 0 <= test <= 1 or not 0 <= val <= 1 or test + val > 1:
        raise DatasetError(f"split ratios must be in [0, 1] with test + val <= 1 (got test={test}, val={val})")
    random.Random(seed).shuffle(uniq)
    n_test = round(len(uniq) * test)
    n_val = round(len(uniq) * val)
    if test > 0 and n_test == 0 and len(uniq) > 1:
        n_test = 1
    out = {k: "test" for k in uniq[:n_test]}
    out.update({k: "val" for k in uniq[n_test:n_test + n_val]})
    out.update({k: "train" for k in uniq[n_test + n_val:]})
    return out


def name_field(name: str, index: int) -> str:
    """Field ``index`` of an ``_``-separated file name without its suffix
    (``I01_05_03.png``, 1 -> ``"05"``), ``""`` when it has no such field."""
    parts = Path(name).stem.split("_")
    return parts[index] if len(parts) > index else ""


def _lookup(table: dict[str, Any], name: str) -> Any:
    if name in table:
        return table[name]
    return table.get(Path(name).name)


class TableDataset(IQADataset):
    """A database as a table of rows; subclasses read their layout in
    ``__init__`` and call :meth:`_finish`."""

    name = ""
    split_names: tuple[str, ...] = ("train", "test")

    def _check_present(self, rows: list[Row], missing: str, where: Path) -> list[Row]:
        absent = [r for r in rows if not r.path.is_file()]
        if absent and missing == "skip":
            rows = [r for r in rows if r.path.is_file()]
        elif absent:
            names = ", ".join(r.name for r in absent[:5]) + (", ..." if len(absent) > 5 else "")
            raise DatasetError(
                f"dataset {self.name!r}: {len(absent)} of {len(rows)} listed images are missing from {where} "
                f"({names}); an incomplete copy? pass --dataset-param missing=skip to use the "
                f"{len(rows) - len(absent)} present ones")
        if not rows:
            raise DatasetError(f"dataset {self.name!r}: none of the listed images is in {where}")
        return rows

    def _finish(self, rows: list[Row], *, root: Path, split_file: str = "", seed: int = 0, test_ratio: float = 0.2,
                val_ratio: float = 0.0, by_ref: bool = False, split_source: str = "") -> None:
        """Assign splits (split file > the rows' official split > seeded ratio)."""
        self.root = root
        self._extra: dict[str, dict[str, Any]] = {}
        if split_file:
            table, extra = read_split_file(self.name, split_file)
            unlisted = [r.name for r in rows if _lookup(table, r.name) is None]
            if unlisted:
                raise DatasetError(
                    f"dataset {self.name!r}: split file {split_file} does not list {len(unlisted)} present image(s) "
                    f"({', '.join(unlisted[:5])})")
            for r in rows:
                r.split = _lookup(table, r.name)
                self._extra[r.name] = _lookup(extra, r.name) or {}
            self.split_source = f"split file {split_file}"
        elif rows and all(r.split is not None for r in rows):
            self.split_source = split_source or "official"
        else:
            keys = {r.name: (r.ref or r.name) if by_ref else r.name for r in rows}
            table = ratio_split(keys.values(), seed, test_ratio, val_ratio)
            for r in rows:
                r.split = table[keys[r.name]]
            kind = "content-disjoint (by reference) " if by_ref else ""
            self.split_source = f"seeded {kind}ratio split (seed {seed}, test {test_ratio}, val {val_ratio})"
        for r in rows:
            self._extra.setdefault(r.name, {}).update(r.extra)
        self._rows = rows
        self._items: dict[str, list[Item]] = {}
        for r in rows:
            self._items.setdefault(r.split, []).append(Item(name=r.name, mos=r.mos, source=r.path, ref=r.ref or r.name,
                                                            group=r.group))

    # --- IQADataset -----------------------------------------------------------
    def splits(self) -> list[str]:
        present = [s for s in ("train", "val", "test") if s in self._items]
        return present + sorted(s for s in self._items if s not in present)

    def items(self, split: str) -> list[Item]:
        if split == "all":
            return [it for s in self.splits() for it in self._items[s]]
        if split not in self._items:
            raise DatasetError(f"dataset {self.name!r} has no split {split!r} (splits: {', '.join(self.splits())})")
        return list(self._items[split])

    def load(self, item: Item) -> torch.Tensor:
        return load_image(item.source)

    def column(self, column: str) -> dict[str, Any]:
        """An extra per-image column (from the split file or the label file),
        e.g. ``column("in_poison_subset")``, as ``image name -> value``."""
        out = {name: extra[column] for name, extra in self._extra.items() if column in extra}
        if not out:
            raise DatasetError(f"dataset {self.name!r} has no column {column!r}")
        return out

    def fingerprint(self) -> str:
        if getattr(self, "_fingerprint", None) is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str:
        h = hashlib.sha256()
        for r in self._rows:
            size = r.path.stat().st_size if r.path.exists() else -1
            h.update(f"{r.name}|{r.mos}|{r.split}|{r.ref}|{size}\n".encode())
        h.update(repr(self.fingerprint_extra()).encode())
        return f"{self.name}:{h.hexdigest()[:16]}"

    def fingerprint_extra(self) -> Any:
        """What else changes the loaded images (e.g. a resize)."""
        return None
