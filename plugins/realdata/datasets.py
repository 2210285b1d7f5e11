"""The public IQA databases, read from a local copy in their official layout.

None is downloaded: each takes ``data_root`` (``--dataset-param
data_root=DIR``), the folder the database was unpacked into.  A missing root,
label file or image folder, or images listed but absent, is a
:class:`DatasetError` naming what is missing and where it was looked for
(``missing=skip`` uses the images that are present).

================  ==========================================================
``livec``         LIVE In the Wild Challenge: ``Data/AllImages_release.mat``,
                  ``Data/AllMOS_release.mat``, ``Images/``.  The first 7
                  entries (``t1.bmp`` ... ``t7.bmp``, the subjects' training
                  images in ``Images/trainingImages``) are excluded, as in
                  every paper.  No official split.
``koniq10k``      KonIQ-10k: ``koniq10k_distributions_sets.csv`` (official
                  70/10/20 split in its ``set`` column) or
                  ``koniq10k_scores_and_distributions.csv``, and
                  ``1024x768/`` (or ``512x384/``).  MOS: ``MOS_zscore`` (0-100).
``kadid10k``      KADID-10k: ``dmos.csv`` and ``images/``; split by reference.
``tid2013``       TID2013: ``mos_with_names.txt`` and ``distorted_images/``;
                  split by reference.  Both name each image's distortion type
                  (``I01_05_03.png``: type ``05``) as its ``Item.group``, so
                  a limited run samples every type.
``spaq``          SPAQ: ``Annotations/MOS and Image attribute scores.xlsx``
                  (or a CSV export of it) and ``TestImage/``; images resized
                  so that the short side is ``resize_short`` (512, as the
                  SPAQ paper's baseline).
``nips2017``      NIPS 2017 adversarial competition dev set: ``images/*.png``
                  (no MOS), for adversarial runs; one split, ``test``.
================  ==========================================================
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from iqabench.contracts import Item
from iqabench.errors import DatasetError
from iqabench.data.imageio import IMAGE_SUFFIXES, load_image

from .. import bib
from .common import (Row, TableDataset, first_existing, name_field, need, need_root, normalise_split, pick_column,
                     read_csv)

Missing = Literal["error", "skip"]


# ------------------------------------------------------------------- LIVEC ---
LIVEC_TRAINING_IMAGES = 7
LIVEC_LAYOUT = "Data/AllImages_release.mat, Data/AllMOS_release.mat and Images/ (the official ChallengeDB layout)"


class LIVEC(TableDataset):
    """LIVE In the Wild Image Quality Challenge (CLIVE): 1162 photographs, MOS ~3-92."""

    name = "livec"
    citation = bib.LIVEC
    description = "LIVE In the Wild Challenge (1162 images, MOS 0-100), official ChallengeDB layout"
    mos_range = (0.0, 100.0)

    def __init__(self, data_root: str = "", split_file: str = "", test_ratio: float = 0.2, seed: int = 0,
                 missing: Literal["auto", "error", "skip"] = "auto") -> None:
        import scipy.io

        root = need_root(self.name, data_root, LIVEC_LAYOUT)
        images_mat = need(self.name, root / "Data" / "AllImages_release.mat", "image list")
        mos_mat = need(self.name, root / "Data" / "AllMOS_release.mat", "MOS file")
        folder = need(self.name, root / "Images", "image folder")
        try:
            names = [str(e[0][0]) if hasattr(e[0], "__len__") else str(e[0])
                     for e in scipy.io.loadmat(str(images_mat))["AllImages_release"].reshape(-1, 1)]
            mos = [float(v) for v in scipy.io.loadmat(str(mos_mat))["AllMOS_release"].reshape(-1)]
        except Exception as exc:
            raise DatasetError(f"dataset 'livec': cannot read {images_mat} / {mos_mat} ({exc})") from None
        if len(names) != len(mos):
            raise DatasetError(f"dataset 'livec': {images_mat} lists {len(names)} images but {mos_mat} has {len(mos)} MOS")
        # the first 7 entries are the subjects' training images (t1..t7.bmp)
        rows = [Row(n, m, folder / n) for n, m in zip(names[LIVEC_TRAINING_IMAGES:], mos[LIVEC_TRAINING_IMAGES:])]
        meta = root / "meta_info.csv"
        if missing == "auto" and meta.is_file():
            rows = self._subset_from_meta(rows, meta)
            rows = self._check_present(rows, "error", folder)
        else:
            rows = self._check_present(rows, "error" if missing == "auto" else missing, folder)
        self.missing = missing
        self._finish(rows, root=root, split_file=split_file, seed=seed, test_ratio=test_ratio,
                     split_source=f"split column of {meta}")

    def _subset_from_meta(self, rows: list[Row], meta: Path) -> list[Row]:
        """A partial copy listed in pyiqa's meta-info convention (image name,
        MOS, [split]): just those images, MOS from the .mat files."""
        df = read_csv(self.name, meta)
        name_col = pick_column(self.name, meta, df.columns, ("img_name", "image_name", "name"), "image-name", 0)
        split_col = next((c for c in df.columns if str(c).lower() in ("split", "set")), None)
        by_name = {r.name: r for r in rows}
        out = []
        for i, rec in enumerate(df.to_dict("records"), start=2):
            name = str(rec[name_col]).strip()
            if name not in by_name:
                raise DatasetError(f"dataset 'livec': {meta} line {i}: {name!r} is not a LIVEC test image")
            row = by_name[name]
            if split_col is not None:
                row.split = normalise_split(self.name, rec[split_col], f"{meta} line {i}")
            out.append(row)
        return out


# --------------------------------------------------------------- KonIQ-10k ---
KONIQ_LABELS = ("koniq10k_distributions_sets.csv", "koniq10k_scores_and_distributions.csv",
                "meta_info_KonIQ10kDataset.csv")


class KonIQ10k(TableDataset):
    """KonIQ-10k: 10073 in-the-wild images 1024x768, official 70/10/20 split."""

    name = "koniq10k"
    citation = bib.KONIQ
    description = "KonIQ-10k (10073 images, MOS_zscore 0-100, official 70/10/20 split)"
    mos_range = (0.0, 100.0)

    def __init__(self, data_root: str = "", resolution: Literal["1024x768", "512x384"] = "1024x768",
                 mos_column: str = "MOS_zscore", split_file: str = "", seed: int = 0, missing: Missing = "error") -> None:
        root = need_root(self.name, data_root, f"{' or '.join(KONIQ_LABELS)} and {resolution}/")
        labels = first_existing(self.name, root, KONIQ_LABELS, "label file")
        folder = need(self.name, root / resolution, "image folder")
        df = read_csv(self.name, labels)
        name_col = pick_column(self.name, labels, df.columns, ("image_name", "img_name", "name"), "image-name", 0)
        mos_col = pick_column(self.name, labels, df.columns, (mos_column,), f"MOS ({mos_column!r})")
        set_col = next((c for c in df.columns if str(c).lower() in ("set", "split")), None)
        rows = []
        for i, rec in enumerate(df.to_dict("records"), start=2):
            split = normalise_split(self.name, rec[set_col], f"{labels} line {i}") if set_col else None
            rows.append(Row(str(rec[name_col]), float(rec[mos_col]), folder / str(rec[name_col]), split=split))
        rows = self._check_present(rows, missing, folder)
        self.mos_column, self.resolution = mos_column, resolution
        self._finish(rows, root=root, split_file=split_file, seed=seed, test_ratio=0.2, val_ratio=0.1,
                     split_source=f"official split ({labels.name})")


# --------------------------------------------------------------- KADID-10k ---
class KADID10k(TableDataset):
    """KADID-10k: 81 references x 25 distortions x 5 levels, DMOS 1-5 (higher is better)."""

    name = "kadid10k"
    citation = bib.KADID
    description = "KADID-10k (10125 images, 81 references, DMOS 1-5), split by reference"
    mos_range = (1.0, 5.0)

    def __init__(self, data_root: str = "", split_file: str = "", test_ratio: float = 0.2, val_ratio: float = 0.0,
                 seed: int = 0, missing: Missing = "error") -> None:
        root = need_root(self.name, data_root, "dmos.csv and images/ (the official KADID-10k layout)")
        labels = first_existing(self.name, root, ("dmos.csv", "meta_info_KADID10kDataset.csv"), "label file")
        folder = need(self.name, root / "images", "image folder")
        df = read_csv(self.name, labels)
        dist = pick_column(self.name, labels, df.columns, ("dist_img", "dist_name"), "distorted-image")
        ref = pick_column(self.name, labels, df.columns, ("ref_img", "ref_name"), "reference-image")
        mos = pick_column(self.name, labels, df.columns, ("dmos", "mos"), "DMOS")
        rows = [Row(str(r[dist]), float(r[mos]), folder / str(r[dist]), ref=Path(str(r[ref])).stem,
                    group=name_field(str(r[dist]), 1)) for r in df.to_dict("records")]
        rows = self._check_present(rows, missing, folder)
        self._finish(rows, root=root, split_file=split_file, seed=seed, test_ratio=test_ratio, val_ratio=val_ratio,
                     by_ref=True)


# ----------------------------------------------------------------- TID2013 ---
class TID2013(TableDataset):
    """TID2013: 25 references x 24 distortions x 5 levels, MOS 0-9."""

    name = "tid2013"
    citation = bib.TID2013
    description = "TID2013 (3000 images, 25 references, MOS 0-9), split by reference"
    mos_range = (0.0, 9.0)

    def __init__(self, data_root: str = "", split_file: str = "", test_ratio: float = 0.2, val_ratio: float = 0.0,
                 seed: int = 0, missing: Missing = "error") -> None:
        root = need_root(self.name, data_root, "mos_with_names.txt and distorted_images/ (the official TID2013 layout)")
        labels = need(self.name, root / "mos_with_names.txt", "label file")
        folder = need(self.name, root / "distorted_images", "image folder")
        # file names differ in case between the list and the folder (i25 vs I25)
        on_disk = {p.name.lower(): p for p in folder.iterdir()}
        rows = []
        for i, line in enumerate(labels.read_text(errors="replace").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                value, name = float(parts[0]), parts[1]
            except (ValueError, IndexError):
                raise DatasetError(f"dataset 'tid2013': {labels} line {i}: expected 'MOS name', got {line!r}") from None
            rows.append(Row(name, value, on_disk.get(name.lower(), folder / name), ref=name[:3].lower(),
                            group=name_field(name, 1)))
        rows = self._check_present(rows, missing, folder)
        self._finish(rows, root=root, split_file=split_file, seed=seed, test_ratio=test_ratio, val_ratio=val_ratio,
                     by_ref=True)


# -------------------------------------------------------------------- SPAQ ---
SPAQ_LABELS = ("Annotations/MOS and Image attribute scores.csv", "Annotations/MOS and Image attribute scores.xlsx",
               "meta_info_SPAQDataset.csv", "mos.csv")


class SPAQ(TableDataset):
    """SPAQ: 11125 smartphone photographs, MOS 0-100."""

    name = "spaq"
    citation = bib.SPAQ
    description = "SPAQ (11125 smartphone photos, MOS 0-100), short side resized to 512"
    mos_range = (0.0, 100.0)

    def __init__(self, data_root: str = "", resize_short: int = 512, split_file: str = "", test_ratio: float = 0.2,
                 seed: int = 0, missing: Missing = "error") -> None:
        root = need_root(self.name, data_root, "Annotations/MOS and Image attribute scores.xlsx and TestImage/")
        labels = first_existing(self.name, root, SPAQ_LABELS, "label file")
        folder = need(self.name, root / "TestImage", "image folder")
        if resize_short < 0:
            raise DatasetError(f"dataset 'spaq': resize_short must be >= 0 (0: no resize), got {resize_short}")
        if labels.suffix == ".xlsx":
            import pandas as pd

            try:
                df = pd.read_excel(labels, engine="openpyxl")
            except ImportError:
                raise DatasetError(
                    f"dataset 'spaq': {labels} is an Excel file and reading it needs openpyxl, which is not "
                    f"installed; install openpyxl or save it as CSV next to it "
                    f"('{labels.with_suffix('.csv').name}')") from None
            except Exception as exc:
                raise DatasetError(f"dataset 'spaq': cannot read {labels} ({exc})") from None
        else:
            df = read_csv(self.name, labels)
        name_col = pick_column(self.name, labels, df.columns, ("Image name", "img_name", "image_name", "name"),
                               "image-name", 0)
        mos_col = pick_column(self.name, labels, df.columns, ("MOS", "mos"), "MOS", 1)
        rows = [Row(str(r[name_col]), float(r[mos_col]), folder / str(r[name_col])) for r in df.to_dict("records")]
        rows = self._check_present(rows, missing, folder)
        self.resize_short = resize_short
        self._finish(rows, root=root, split_file=split_file, seed=seed, test_ratio=test_ratio)

    def load(self, item: Item) -> torch.Tensor:
        x = load_image(item.source)
        s = self.resize_short
        h, w = x.shape[-2:]
        if s and min(h, w) != s:
            size = (round(h * s / min(h, w)), round(w * s / min(h, w)))
            x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)
        return x

    def fingerprint_extra(self):
        return {"resize_short": self.resize_short}


# --------------------------------------------------------------- NIPS 2017 ---
class NIPS2017(TableDataset):
    """NIPS 2017 adversarial competition dev set: images without MOS."""

    name = "nips2017"
    citation = bib.NIPS2017
    description = "NIPS 2017 adversarial dev set (1000 PNGs, no MOS) for adversarial runs"
    mos_range = (0.0, 100.0)

    def __init__(self, data_root: str = "") -> None:
        root = need_root(self.name, data_root, "images/*.png (the NIPS 2017 dev set) or the images themselves")
        folder = root / "images" if (root / "images").is_dir() else root
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"dataset 'nips2017': no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        rows = [Row(p.name, None, p, split="test") for p in files]
        self._finish(rows, root=root, split_source="every image")
