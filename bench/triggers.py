"""Throughput of the batched DCT trigger against a per-block loop (not a test).

Megapixels/second of the UAP-DCT trigger (REFERENCES.md 2: pad, round to 8
bits, YCbCr, 16x16 block DCT, add ``alpha * t`` at 64 positions, inverse,
RGB) on ``--batch`` random 8-bit images of ``--size`` x ``--size``:

(a) iqabench's implementation (``iqabench_plugins.backdoor.uap_dct``): the
    block DCT as two batched matrix products on views of the whole batch;
(b) a baseline written the way research code usually does it: the same
    numpy colour conversion, then a python loop over images, channels and
    16x16 blocks calling ``scipy.fft.dctn`` / ``idctn`` (``norm=None``) per
    block -- the same math.

Both produce the same images (the largest difference is printed); the ratio
(a)/(b) is the speed-up of batching.  A random 3x64 pattern of the released
trigger's scale stands in for the trigger: the cost does not depend on it.

    python bench/triggers.py [--device cuda] [--batch 8] [--size 512] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.fft
import torch

from iqabench_plugins.backdoor.uap_dct import (
    MID64_POSITIONS,
    RGB_FROM_YCBCR,
    RGB_OFFSET,
    UAPDCT,
    YCBCR_FROM_RGB,
    YCBCR_OFFSET,
)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def loop_trigger(x: np.ndarray, alpha: float, t: np.ndarray, n: int = 16) -> np.ndarray:
    """The same trigger with a python loop over 16x16 blocks (scipy per block), unclamped."""
    b, c, h, w = x.shape
    dh, dw = -h % n, -w % n
    top, left = dh // 2, dw // 2
    xp = np.pad(x, ((0, 0), (0, 0), (top, dh - top), (left, dw - left)))
    q = np.round(xp * 255.0)
    ycc = np.einsum("vc,bchw->bvhw", np.array(YCBCR_FROM_RGB), q) + np.array(YCBCR_OFFSET)[None, :, None, None]
    ycc -= 128.0
    rows, cols = np.unravel_index(np.array(MID64_POSITIONS), (n, n))
    out = np.empty_like(ycc)
    for i in range(b):
        for ch in range(c):
            for r in range(0, xp.shape[2], n):
                for s in range(0, xp.shape[3], n):
                    coeffs = scipy.fft.dctn(ycc[i, ch, r : r + n, s : s + n], type=2, norm=None)
                    coeffs[rows, cols] += alpha * t[ch]
                    out[i, ch, r : r + n, s : s + n] = scipy.fft.idctn(coeffs, type=2, norm=None)
    out += 128.0
    rgb = np.einsum("vc,bchw->bvhw", np.array(RGB_FROM_YCBCR), out) + np.array(RGB_OFFSET)[None, :, None, None]
    return (rgb / 255.0)[:, :, top : top + h, left : left + w]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="batched implementation")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of (a) (best is kept)")
    ap.add_argument("--loop-images", type=int, default=0,
                    help="images timed for (b) (default: all of --batch); its rate is per pixel anyway")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    dtype = getattr(torch, args.dtype)

    g = torch.Generator().manual_seed(0)
    # 8-bit images, as real ones are: round(255 x) is then the same in float32 and float64
    x_cpu = (torch.randint(0, 256, (args.batch, 3, args.size, args.size), generator=g) / 255.0).to(dtype)
    t = ((torch.rand(3, 64, generator=g) * 2 - 1) * 400.0).to(dtype)
    trigger = UAPDCT().set_pattern(t)
    x = x_cpu.to(dev)
    mpix = args.batch * args.size * args.size / 1e6

    trigger.apply(x, 1.0, clamp=False)  # warm-up
    _sync(dev)
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        y = trigger.apply(x, 1.0, clamp=False)
        _sync(dev)
        best = min(best, time.perf_counter() - t0)

    nl = args.loop_images or args.batch
    xl = x_cpu[:nl].double().numpy()
    t0 = time.perf_counter()
    y_loop = loop_trigger(xl, 1.0, t.double().numpy())
    t_loop = time.perf_counter() - t0
    mpix_loop = nl * args.size * args.size / 1e6

    diff = float(np.abs(y[:nl].double().cpu().numpy() - y_loop).max())
    rate_b, rate_l = mpix / best, mpix_loop / t_loop
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else f"cpu, {torch.get_num_threads()} threads"
    print(f"device {dev} ({name}); {args.batch} images {args.size}x{args.size}, batched in {args.dtype}")
    print(f"batched (matrix products)     {rate_b:10.2f} Mpix/s   ({best * 1e3:.1f} ms per batch)")
    print(f"per-block loop (scipy.dctn)   {rate_l:10.3f} Mpix/s   ({t_loop:.2f} s for {nl} images)")
    print(f"ratio batched / loop          {rate_b / rate_l:10.1f}x")
    print(f"max |batched - loop|          {diff:10.2e}  (on [0, 1])")


if __name__ == "__main__":
    main()
