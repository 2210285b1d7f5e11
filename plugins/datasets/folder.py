"""A folder of images, with an optional CSV of labels.

The CSV follows pyiqa's meta-info convention: image path (relative to the
folder), MOS, then split columns (a header row is required).  Columns are
taken by position unless named with ``name_column`` / ``mos_column`` /
``split_column`` (e.g. one of several split columns).  ``split_file`` (a CSV
``name,split``) overrides the CSV's split; without either the images are
split by a seeded ratio; without a CSV every image is listed without a MOS
(enough for adversarial runs, which need no labels).  Images listed in the
CSV but absent from the folder are an error naming them
(``missing=skip`` drops them).  ``data_root`` is an alias of ``root``.
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Literal

import pandas as pd

from iqabench.contracts import IQADataset, Item
from iqabench.errors import DatasetError
from iqabench.data.imageio import IMAGE_SUFFIXES, load_image


class FolderDataset(IQADataset):
    """Images in a folder, optional CSV name,mos[,split] (pyiqa meta-info convention)."""

    name = "folder"
    description = "A folder of images with an optional CSV of name,mos[,split] (pyiqa meta-info convention)."

    def __init__(self, root: str = "", csv: str = "", test_ratio: float = 0.2, seed: int = 0,
                 split_file: str = "", name_column: str = "", mos_column: str = "", split_column: str = "",
                 missing: Literal["error", "skip"] = "error", data_root: str = ""):
        if root and data_root and Path(root) != Path(data_root):
            raise DatasetError(f"dataset 'folder': root={root} and data_root={data_root} disagree (give one)")
        root = root or data_root
        if not root:
            raise DatasetError("dataset 'folder' needs --dataset-param root=DIR (or data_root=DIR)")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(f"dataset 'folder': root {self.root} is not a directory")
        self.csv = csv
        self._items: dict[str, list[Item]] = {}
        if csv:
            rows = self._read_csv(Path(csv).expanduser() if Path(csv).is_absolute() else self.root / csv,
                                  name_column, mos_column, split_column)
            rows = self._present(rows, missing)
        else:
            rows = [(p.name, None, None) for p in sorted(self.root.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not rows:
            raise DatasetError(f"dataset 'folder': no images found in {self.root}")
        if split_file:
            from iqabench_plugins.realdata.common import read_split_file

            table, _ = read_split_file(self.name, split_file)
            unlisted = [n for n, _, _ in rows if n not in table and Path(n).name not in table]
            if unlisted:
                raise DatasetError(f"dataset 'folder': split file {split_file} does not list {len(unlisted)} "
                                   f"image(s) ({', '.join(unlisted[:5])})")
            rows = [(n, m, table.get(n) or table[Path(n).name]) for n, m, _ in rows]
        if all(r[2] is None for r in rows):
            names = [r[0] for r in rows]
            rng = random.Random(seed)
            test = set(rng.sample(names, max(1, round(len(names) * test_ratio)))) if len(names) > 1 else set(names)
            rows = [(n, m, "test" if n in test else "train") for n, m, _ in rows]
        for name, mos, split in rows:
            item = Item(name=name, mos=mos, source=self.root / name, ref=name)
            self._items.setdefault(split, []).append(item)
            self._items.setdefault("all", []).append(item)

    def _present(self, rows: list[tuple], missing: str) -> list[tuple]:
        absent = [r[0] for r in rows if not (self.root / r[0]).is_file()]
        if absent and missing == "error":
            raise DatasetError(
                f"dataset 'folder': {len(absent)} of {len(rows)} images listed in {self.csv} are missing from "
                f"{self.root} ({', '.join(absent[:5])}{', ...' if len(absent) > 5 else ''}); "
                f"pass --dataset-param missing=skip to use the present ones")
        return [r for r in rows if r[0] not in set(absent)]

    def _read_csv(self, path: Path, name_column: str = "", mos_column: str = "", split_column: str = "") -> list[tuple]:
        if not path.exists():
            raise DatasetError(f"dataset 'folder': label file {path} not found")
        try:
            df = pd.read_csv(path)
        except Exception as exc:
            raise DatasetError(f"{path}: cannot read CSV ({exc})") from None
        if df.shape[1] < 2:
            raise DatasetError(f"{path}: expected columns name,mos[,split]")
        cols = list(df.columns)

        def col(given: str, index: int | None, what: str):
            if given:
                if given not in cols:
                    raise DatasetError(f"{path}: no {what} column {given!r} (columns: {', '.join(map(str, cols))})")
                return given
            return cols[index] if index is not None and index < len(cols) else None

        name_c, mos_c = col(name_column, 0, "name"), col(mos_column, 1, "MOS")
        split_c = col(split_column, 2, "split")
        rows = []
        for i, rec in enumerate(df.to_dict("records"), start=2):
            name, mos = str(rec[name_c]), rec[mos_c]
            try:
                mos = float(mos)
            except (TypeError, ValueError):
                raise DatasetError(f"{path} line {i}: MOS {mos!r} is not a number") from None
            split = str(rec[split_c]).strip() if split_c is not None and pd.notna(rec[split_c]) else None
            rows.append((name, mos, split))
        return rows

    def splits(self) -> list[str]:
        return sorted(self._items)

    def items(self, split: str) -> list[Item]:
        return self._items.get(split, [])

    def load(self, item: Item):
        return load_image(item.source)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for split in self.splits():
            if split == "all":
                continue
            for item in self._items[split]:
                path = Path(item.source)
                stat = path.stat() if path.exists() else None
                h.update(f"{split}:{item.name}:{item.mos}:{stat.st_size if stat else -1}:"
                         f"{stat.st_mtime_ns if stat else -1}".encode())
        return f"folder:{self.root}:{h.hexdigest()[:16]}"
