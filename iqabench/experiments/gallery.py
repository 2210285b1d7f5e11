"""Per-image galleries: while an evasion cell runs, thumbnails of its images
with the largest gain -- clean, attacked, and their difference amplified to
the full grey range -- are saved beside the store
(:func:`iqabench.contracts.context.gallery_dir`), at most ``k`` per batch,
and when the cell ends only the cell's ``k`` largest gains are kept, listed
in ``gallery.json`` with their scores, PSNR and SSIM (the report embeds
them).  A backdoor cell keeps its trigger's largest shifts at alpha = +1
the same way (:func:`iqabench.experiments.backdoor.experiment.keep_gallery`).  Thumbnails are JPEG (quality :data:`QUALITY`) no larger than
:data:`THUMB` pixels a side: a few tens of kB per image, a bounded number
per cell.  Nothing here changes a result or a key.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from ..artifacts import atomic_write_bytes

#: the longest side of a thumbnail, in pixels
THUMB = 192
#: JPEG quality of the thumbnails
QUALITY = 90
KINDS = ("clean", "attacked", "diff")


def gain(row: dict, lower_better: bool) -> float:
    """How much the attack raised the model's opinion of the image (its sign flipped for lower-is-better)."""
    delta = row["attacked"] - row["clean"]
    return -delta if lower_better else delta


def _jpeg(image: torch.Tensor, path: Path) -> None:
    from io import BytesIO

    from PIL import Image

    array = (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    picture = Image.fromarray(array)
    picture.thumbnail((THUMB, THUMB))
    buf = BytesIO()
    picture.save(buf, format="JPEG", quality=QUALITY, subsampling=0)  # 4:4:4: colour noise survives
    atomic_write_bytes(path, buf.getvalue())


class Gallery:
    """The thumbnails of one cell (``folder``), at most ``k`` kept."""

    def __init__(self, folder: Path, k: int, lower_better: bool):
        self.folder, self.k, self.lower_better = Path(folder), k, lower_better

    def reset(self) -> None:
        """Forget earlier thumbnails (a cell computed from its first batch)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def offer(self, rows: list[dict], x: torch.Tensor, adv: torch.Tensor) -> None:
        """Save thumbnails of the batch's ``k`` largest gains (``rows[j]`` is image ``x[j]``)."""
        order = sorted(range(len(rows)), key=lambda j: -gain(rows[j], self.lower_better))[: self.k]
        for j in order:
            diff = adv[j] - x[j]
            peak = float(diff.abs().max())
            amplification = 0.5 / peak if peak > 0 else 1.0
            stem = self.folder / str(rows[j]["idx"])
            _jpeg(x[j], stem.with_name(f"{stem.name}-clean.jpg"))
            _jpeg(adv[j], stem.with_name(f"{stem.name}-attacked.jpg"))
            _jpeg(0.5 + amplification * diff, stem.with_name(f"{stem.name}-diff.jpg"))
            atomic_write_bytes(stem.with_name(f"{stem.name}.json"), json.dumps({"amplification": amplification}).encode())

    def finish(self, rows: list[dict]) -> list[dict]:
        """Keep the cell's ``k`` largest gains (of all its rows), drop the other
        thumbnails, write ``gallery.json``; returns its entries."""
        if not self.folder.is_dir():
            return []
        ranked = sorted(rows, key=lambda r: -gain(r, self.lower_better))
        keep = [r for r in ranked if (self.folder / f"{r['idx']}.json").is_file()][: self.k]
        kept = {str(r["idx"]) for r in keep}
        for path in self.folder.iterdir():
            if path.name != "gallery.json" and path.name.split("-")[0].split(".")[0] not in kept:
                path.unlink()
        entries = []
        for r in keep:
            meta = json.loads((self.folder / f"{r['idx']}.json").read_text())
            entries.append({"name": r["name"], "idx": r["idx"], "clean": r["clean"], "attacked": r["attacked"],
                            "gain": gain(r, self.lower_better), "psnr": r.get("psnr"), "ssim": r.get("ssim"),
                            "amplification": meta["amplification"],
                            "files": {kind: f"{r['idx']}-{kind}.jpg" for kind in KINDS}})
        atomic_write_bytes(self.folder / "gallery.json", json.dumps(entries, indent=1).encode())
        return entries
