"""How much iqabench's default crop policy moves each zoo model's score
against pyiqa's own inference (not a test).

iqabench scores every zoo model, by default, on ONE centred crop of
``crop_size`` (224; NIQE and BRISQUE: the whole image).  pyiqa's metrics
score HyperIQA, TReS and MANIQA on 25, 50 and 20 crops placed by
``uniform_crop`` (from the top-left corner, steps ``(side - 224) //
floor(sqrt(n))``; an image whose short side is <= 224 is first upscaled to
225), and DBCNN, MUSIQ, TOPIQ-NR, NIMA and CLIP-IQA on the whole image
(NIMA resizes it to 299 and centre-crops 299 itself).  tests/test_calibration.py
shows that iqabench's wrapper equals pyiqa's network at the same crops, so
pyiqa's inference is computed here with iqabench's own models: the whole
image (``crop_size=0``) or the mean over pyiqa's crops.

For each model, on the first ``--images`` images of a folder (default: the
LIVEC sample of the development tree), the script prints the weights used,
the mean and mean absolute difference (iqabench default - pyiqa), the
spread (standard deviation) of pyiqa's scores over the images, the mean
absolute difference in units of that spread, and the Spearman correlation
of the two policies over the images.  Weights: ``--weights default`` (pyiqa's
checkpoint when it is in the local cache, else a seeded random
initialisation -- then the figures say how a random network reacts, not a
trained one).

    python bench/crop_policy.py [--images 4] [--models hyperiqa,dbcnn] [--root DIR] [--device cuda]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import iqabench

#: pyiqa's test-time crops (its architectures' defaults); None: whole image
PYIQA_CROPS = {"hyperiqa": 25, "tres": 50, "maniqa": 20, "dbcnn": None, "musiq": None, "topiq_nr": None,
               "nima": None, "clipiqa": None, "niqe": None, "brisque": None}
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "livec-sample" / "Images"


def pyiqa_crops(x: torch.Tensor, size: int, count: int) -> torch.Tensor:
    """pyiqa's test-time crops of one image (1 x 3 x H x W), by pyiqa's own
    ``uniform_crop`` -> count x 3 x size x size."""
    from iqabench_plugins.zoo.offline import import_pyiqa_module

    crops = import_pyiqa_module("pyiqa.archs.arch_util").uniform_crop([x], size, count)
    return crops[0] if isinstance(crops, (list, tuple)) else crops


def load(path: Path) -> torch.Tensor:
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3:
        return float("nan")
    ra, rb = a.argsort().argsort(), b.argsort().argsort()
    return float(np.corrcoef(ra, rb)[0, 1])


def get_model(name: str, weights: str, **params) -> torch.nn.Module:
    """The model with ``weights``; a default checkpoint that is not on disk
    (offline) falls back to the seeded random initialisation."""
    from iqabench.errors import WeightsError

    try:
        return iqabench.get_model(name, weights=weights, **params)
    except WeightsError:
        if weights != "default":
            raise
        return iqabench.get_model(name, weights="random", **params)


@torch.no_grad()
def measure(name: str, images: list[Path], weights: str, device: str = "cpu") -> dict:
    model = get_model(name, weights).to(device)
    whole = None
    if PYIQA_CROPS[name] is None:  # pyiqa scores the whole image
        whole = model if model.crop_size == 0 else get_model(name, weights, crop_size=0).to(device)
    ours, theirs = [], []
    for path in images:
        x = load(path).to(device)
        ours.append(float(model(x)))
        if whole is not None:
            theirs.append(ours[-1] if whole is model else float(whole(x)))
        else:
            theirs.append(float(model(pyiqa_crops(x, model.crop_size, PYIQA_CROPS[name])).mean()))
    a, b = np.array(ours), np.array(theirs)
    spread = float(b.std())
    return {"weights": model.weights, "mean_diff": float((a - b).mean()), "mean_abs_diff": float(np.abs(a - b).mean()),
            "spread": spread, "abs_diff_per_spread": float(np.abs(a - b).mean() / spread) if spread > 0 else float("nan"),
            "srocc": spearman(a, b), "pyiqa_mean": float(b.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder of images")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--models", default=",".join(PYIQA_CROPS))
    ap.add_argument("--weights", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = sorted(p for p in args.root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".bmp", ".png"))[: args.images]
    print(f"{len(images)} images from {args.root}")
    print("model     pyiqa policy   mean(ours-pyiqa)  mean|diff|  pyiqa mean  spread   |diff|/spread  SROCC  seconds  weights")
    for name in args.models.split(","):
        t = time.perf_counter()
        r = measure(name, images, args.weights, args.device)
        policy = f"{PYIQA_CROPS[name]} crops" if PYIQA_CROPS[name] else "whole image"
        print(f"{name:9s} {policy:13s} {r['mean_diff']:+16.4g} {r['mean_abs_diff']:11.4g} {r['pyiqa_mean']:11.4g} "
              f"{r['spread']:8.3g} {r['abs_diff_per_spread']:13.3g} {r['srocc']:6.2f} {time.perf_counter() - t:8.1f}  "
              f"{r['weights']}", flush=True)


if __name__ == "__main__":
    main()
