"""A folder of images, with an optional CSV of labels.

The CSV has columns ``name,mos[,split]`` (a header row is required; pyiqa's
meta-info convention -- image path, MOS, then split columns -- is read the
same way by position).  Without a split column the images are split by a
seeded ratio; without a CSV every image is listed without a MOS (enough for
adversarial runs, which need no labels).
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pandas as pd

from iqabench.contracts import IQADataset, Item
from iqabench.errors import DatasetError
from iqabench.imageio import IMAGE_SUFFIXES, load_image


class FolderDataset(IQADataset):
    """Images in a folder, optional CSV name,mos[,split]."""

    name = "folder"
    description = "A folder of images with an optional CSV of name,mos[,split]."

    def __init__(self, root: str, csv: str = "", test_ratio: float = 0.2, seed: int = 0):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(f"dataset 'folder': root {self.root} is not a directory")
        self.csv = csv
        self._items: dict[str, list[Item]] = {}
        if csv:
            rows = self._read_csv(Path(csv).expanduser() if Path(csv).is_absolute() else self.root / csv)
        else:
            rows = [(p.name, None, None) for p in sorted(self.root.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not rows:
            raise DatasetError(f"dataset 'folder': no images found in {self.root}")
        if all(r[2] is None for r in rows):
            names = [r[0] for r in rows]
            rng = random.Random(seed)
            test = set(rng.sample(names, max(1, round(len(names) * test_ratio)))) if len(names) > 1 else set(names)
            rows = [(n, m, "test" if n in test else "train") for n, m, _ in rows]
        for name, mos, split in rows:
            item = Item(name=name, mos=mos, source=self.root / name, ref=name)
            self._items.setdefault(split, []).append(item)
            self._items.setdefault("all", []).append(item)

    def _read_csv(self, path: Path) -> list[tuple]:
        if not path.exists():
            raise DatasetError(f"dataset 'folder': label file {path} not found")
        try:
            df = pd.read_csv(path)
        except Exception as exc:
            raise DatasetError(f"{path}: cannot read CSV ({exc})") from None
        if df.shape[1] < 2:
            raise DatasetError(f"{path}: expected columns name,mos[,split]")
        rows = []
        for i, row in enumerate(df.itertuples(index=False), start=2):
            name, mos = str(row[0]), row[1]
            try:
                mos = float(mos)
            except (TypeError, ValueError):
                raise DatasetError(f"{path} line {i}: MOS {mos!r} is not a number") from None
            split = str(row[2]) if df.shape[1] > 2 and pd.notna(row[2]) else None
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
        for item in self._items["all"]:
            stat = Path(item.source).stat() if Path(item.source).exists() else None
            h.update(f"{item.name}:{item.mos}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1}".encode())
        return f"folder:{self.root}:{h.hexdigest()[:16]}"
