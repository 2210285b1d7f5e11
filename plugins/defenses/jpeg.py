"""JPEG purification: the real codec (``jpeg``) and a differentiable approximation (``diffjpeg``).

``jpeg`` compresses each image with libjpeg through PIL at ``quality`` and
decodes it.  The reference (``metrics/defences/jpeg/run.py`` of the MSU
defences benchmark) converts to 8 bits with ``(x * 255).type(uint8)``,
which truncates: ``to_uint8 = "floor"`` (default) does the same, ``"round"``
rounds.  Quantised coefficients have no useful gradient, so an adaptive
attacker goes through ``jpeg`` by BPDA.

``diffjpeg`` is the baseline JPEG pipeline written in torch -- JFIF YCbCr,
4:2:0 chroma averaging, 8x8 orthonormal DCT, the IJG quality-scaled
quantisation tables, rounding, dequantisation, inverse DCT and libjpeg's
"fancy" (triangle) chroma upsampling -- with rounding done straight-through
(round forward, identity backward), as the reference's ``DiffJPEGCoding(ste=True)``
(Reich et al., WACV 2024).  Its forward pass is the codec up to libjpeg's
integer arithmetic; the test suite bounds its distance to PIL's output.  It is
differentiable, so the adaptive attacker needs no BPDA.  Images are padded to a
multiple of 16 by edge replication, as libjpeg pads a partial MCU (the reference
pads by reflection).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from iqabench.contracts import InputDefense
from iqabench.errors import ParameterError
from .. import bib

#: the IJG / JPEG Annex K base tables (row-major 8x8)
LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
          47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def _check_quality(defense: InputDefense) -> None:
    q = defense.quality
    if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 100:
        raise ParameterError(f"{defense.name!r} parameter 'quality' must be an integer in [1, 100], got {q!r}")


def quant_table(base: list[int], quality: int) -> torch.Tensor:
    """libjpeg's ``jpeg_quality_scaling``: scale 5000/q below 50, 200 - 2q above; entries in [1, 255]."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    table = [min(max((b * scale + 50) // 100, 1), 255) for b in base]
    return torch.tensor(table, dtype=torch.float64).view(8, 8)


def dct_matrix(dtype=torch.float64) -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix ``D`` (a block's DCT is ``D B D^T``)."""
    k = torch.arange(8, dtype=dtype).view(-1, 1)
    n = torch.arange(8, dtype=dtype).view(1, -1)
    d = torch.cos((2 * n + 1) * k * torch.pi / 16) * (2 / 8) ** 0.5
    d[0] /= 2 ** 0.5
    return d


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def _blocks(plane: torch.Tensor) -> torch.Tensor:
    """B x H x W -> B x (H/8) x (W/8) x 8 x 8."""
    b, h, w = plane.shape
    return plane.reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)


def _unblocks(blocks: torch.Tensor) -> torch.Tensor:
    b, bh, bw = blocks.shape[:3]
    return blocks.permute(0, 1, 3, 2, 4).reshape(b, bh * 8, bw * 8)


def _code_plane(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Level shift, DCT, quantise (straight-through), dequantise, inverse DCT of one plane (0-255)."""
    d = dct_matrix(plane.dtype).to(plane.device)
    t = table.to(plane.device, plane.dtype)
    coef = d @ (_blocks(plane) - 128) @ d.T
    coef = _RoundSTE.apply(coef / t) * t
    return _unblocks(d.T @ coef @ d) + 128


def _upsample2(plane: torch.Tensor) -> torch.Tensor:
    """libjpeg's fancy h2v2 upsampling: 3/4-1/4 triangle weights, edges replicated (= bilinear, half-pixel centres)."""
    return F.interpolate(plane.unsqueeze(1), scale_factor=2, mode="bilinear", align_corners=False).squeeze(1)


def diff_jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Differentiable JPEG (4:2:0) of a Bx3xHxW batch in [0, 1]; returns [0, 1] floats (not rounded to 8 bits)."""
    h, w = x.shape[-2:]
    ph, pw = -h % 16, -w % 16
    rgb = F.pad(x, (0, pw, 0, ph), mode="replicate") * 255 if ph or pw else x * 255
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    cb, cr = (F.avg_pool2d(c.unsqueeze(1), 2).squeeze(1) for c in (cb, cr))
    y = _code_plane(y, quant_table(LUMA, quality))
    chroma = quant_table(CHROMA, quality)
    cb = _upsample2(_code_plane(cb, chroma)) - 128
    cr = _upsample2(_code_plane(cr, chroma)) - 128
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], dim=1)
    return (out[..., :h, :w] / 255).clamp(0.0, 1.0)


def pil_jpeg(x: torch.Tensor, quality: int, to_uint8: str = "floor") -> torch.Tensor:
    """Each image through PIL's JPEG encoder and decoder at ``quality`` (4:2:0, libjpeg's defaults)."""
    from PIL import Image

    scaled = x.detach().cpu().double() * 255
    pixels = (scaled.floor() if to_uint8 == "floor" else scaled.round()).clamp(0, 255).to(torch.uint8)
    out = []
    for img in pixels.permute(0, 2, 3, 1).numpy():
        buf = io.BytesIO()
        Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        out.append(np.array(Image.open(buf).convert("RGB")))
    decoded = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    return (decoded.to(x.dtype) / 255).to(x.device)


@dataclass
class JPEG(InputDefense):
    """JPEG compression at ``quality`` (libjpeg via PIL; reference default 50)."""

    name = "jpeg"
    citation = bib.GUARDIANS
    description = "Input purification: JPEG compression at quality 50 (MSU defences benchmark)"
    differentiable = False

    quality: int = 50
    to_uint8: Literal["floor", "round"] = "floor"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_quality(self)

    def purify(self, x):
        return pil_jpeg(x, self.quality, self.to_uint8)


@dataclass
class DiffJPEG(InputDefense):
    """Differentiable JPEG at ``quality`` (straight-through rounding; reference default 50)."""

    name = "diffjpeg"
    citation = (bib.SHIN_JPEG, bib.GUARDIANS)
    description = "Input purification: differentiable JPEG, quality 50, straight-through rounding (MSU defences benchmark)"

    quality: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_quality(self)

    def purify(self, x):
        return diff_jpeg(x, self.quality)
