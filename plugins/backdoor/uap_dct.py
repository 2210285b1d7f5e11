"""The BAIQA UAP-DCT trigger (Yu et al., AAAI 2025), as the released code injects it.

Injection (REFERENCES.md 2; checked against the release's ``network.py``,
``Add_trigger_net_v2.forward`` with ``pad_to`` / ``unpad`` / ``to_ycbcr`` /
``to_rgb``, which is what its training, test and trigger search use):

1. zero-pad ``x`` (RGB in [0, 1]) to a multiple of 16, centred: the top/left
   pad is ``floor(d / 2)`` and the bottom/right pad the rest;
2. ``round(x * 255)`` (round half to even, as ``torch.round``);
3. RGB -> YCbCr with the full-range JPEG matrix at data range 255, with the
   release's constants (:data:`YCBCR_FROM_RGB`, :data:`RGB_FROM_YCBCR`;
   note the release's inverse offsets use 6-digit JFIF constants while its
   matrices use 9 digits, so the colour round trip is not exact: off by at
   most ~3e-7 on [0, 1] -- kept, to be faithful);
4. 16x16 blocks, minus 128, unnormalised DCT-II (:mod:`.dct`);
5. add ``alpha * t[c, k]`` to the coefficient at row-major flat position
   :data:`MID64_POSITIONS` ``[k]`` of every block of channel ``c`` (Y, Cb,
   Cr).  The release writes these positions as
   ``zigzag_indices[128 - 32 : 128 + 32]``, a slice of its 16x16
   raster-to-zigzag table (rows 6-9) whose *values* it uses as raster
   indices: hence the order below, not a zigzag scan;
6. inverse DCT, +128, YCbCr -> RGB, / 255, unpad, clamp to [0, 1].  The
   output is not re-quantised.

Differences from the release, none of which changes a value: the release
passes one ``strength = alpha * t`` per call (its training loop calls the
injection image by image); here ``alpha`` may be a ``Tensor[B]`` and a batch
is processed at once.  ``clamp=False`` returns the image before step 6's
clamp.

PSNR convention: the release's test loop averages the MSE of *clamped*
images per batch; the paper's table (29.8 / 32.3 / 35.9 / 41.9 / 49.8 dB at
alpha 1 / .75 / .5 / .25 / .1) is reproduced by the *unclamped* images
(29.83 / 32.32 / 35.85 / 41.87 / 49.83 dB on the LIVEC sample; clamped:
30.10 dB at alpha 1), for which the per-image PSNR is the same for every
image, so averaging PSNRs or MSEs gives the same figure.

Because every step after the rounding is linear, the trigger is additive:
``apply(x, alpha, clamp=False) = round(255 x_pad)/255 + alpha * P`` cropped,
with ``P`` one fixed 16-periodic RGB pattern (up to the ~3e-7 colour round
trip error) -- independent of the image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from iqabench.contracts import Trigger
from iqabench.errors import ParameterError

from .dct import block_dct2, block_idct2
from .. import bib

BLOCK = 16

#: the 64 row-major flat positions (row = vertical frequency) of a 16x16 DCT
#: block that the trigger modifies, in the order of ``t``'s columns
MID64_POSITIONS: tuple[int, ...] = (
    21, 34, 38, 51, 59, 72, 84, 97, 113, 126, 145, 155, 174, 180, 199, 201,
    35, 37, 52, 58, 73, 83, 98, 112, 127, 144, 156, 173, 181, 198, 202, 219,
    36, 53, 57, 74, 82, 99, 111, 128, 143, 157, 172, 182, 197, 203, 218, 220,
    54, 56, 75, 81, 100, 110, 129, 142, 158, 171, 183, 196, 204, 217, 221, 234,
)

#: full-range (JPEG) RGB -> YCbCr at data range 255, rows Y, Cb, Cr; offsets (0, 128, 128)
YCBCR_FROM_RGB = (
    (0.29900, 0.58700, 0.11400),
    (-0.168735892, -0.331264108, 0.50000),
    (0.50000, -0.418687589, -0.081312411),
)
YCBCR_OFFSET = (0.0, 128.0, 128.0)
#: YCbCr -> RGB, rows R, G, B, and the release's offsets (data range 255)
RGB_FROM_YCBCR = (
    (1.0, 0.0, 1.40200),
    (1.0, -0.344136286, -0.714136286),
    (1.0, 1.77200, 0.0),
)
RGB_OFFSET = (-179.456, 135.458816, -226.816)


def pad_to(x: torch.Tensor, stride: int = BLOCK) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Zero-pad the last two dimensions to multiples of ``stride``, centred.

    Returns the padded tensor and ``(left, right, top, bottom)``.
    """
    h, w = x.shape[-2:]
    dh, dw = -h % stride, -w % stride
    pads = (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)
    if dh or dw:
        x = F.pad(x, pads, mode="constant", value=0.0)
    return x, pads


def unpad(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


def _affine(x: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """``matrix @ pixel + offset`` for every pixel of ``B x 3 x H x W`` (one batched GEMM)."""
    b = x.shape[0]
    m = matrix.to(device=x.device, dtype=x.dtype)
    o = offset.to(device=x.device, dtype=x.dtype)
    # add_ in place: the product's output is not needed by its backward
    return torch.matmul(m, x.reshape(b, 3, -1)).add_(o.view(1, 3, 1)).view(x.shape)


_F64 = {"dtype": torch.float64}


def rgb_to_ycbcr(x255: torch.Tensor) -> torch.Tensor:
    """``B x 3 x H x W`` RGB in [0, 255] -> full-range YCbCr (the release's ``to_ycbcr``)."""
    return _affine(x255, torch.tensor(YCBCR_FROM_RGB, **_F64), torch.tensor(YCBCR_OFFSET, **_F64))


def ycbcr_to_rgb(y255: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` with the release's constants (its ``to_rgb``)."""
    return _affine(y255, torch.tensor(RGB_FROM_YCBCR, **_F64), torch.tensor(RGB_OFFSET, **_F64))


def _folded_maps() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two affine colour maps of the pipeline with its constant steps folded
    in (float64): RGB in [0, 255] -> YCbCr - 128, and YCbCr - 128 -> RGB / 255.
    The same arithmetic as the release's separate steps, fewer passes."""
    fwd = torch.tensor(YCBCR_FROM_RGB, **_F64)
    fwd_off = torch.tensor(YCBCR_OFFSET, **_F64) - 128.0
    inv = torch.tensor(RGB_FROM_YCBCR, **_F64)
    inv_off = (inv @ torch.full((3,), 128.0, **_F64) + torch.tensor(RGB_OFFSET, **_F64)) / 255.0
    return fwd, fwd_off, inv / 255.0, inv_off


_FWD, _FWD_OFF, _INV, _INV_OFF = _folded_maps()


def coefficient_pattern(t: torch.Tensor, positions=MID64_POSITIONS) -> torch.Tensor:
    """``t`` (``3 x len(positions)``) scattered into a ``3 x 16 x 16`` block of
    DCT coefficients, zero elsewhere (differentiable w.r.t. ``t``)."""
    idx = torch.as_tensor(positions, dtype=torch.long, device=t.device)
    full = t.new_zeros(t.shape[0], BLOCK * BLOCK)
    return full.scatter(1, idx.expand(t.shape[0], -1), t).view(t.shape[0], BLOCK, BLOCK)


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def inject_dct(x: torch.Tensor, alpha, t: torch.Tensor, clamp: bool = True,
               positions=MID64_POSITIONS) -> torch.Tensor:
    """Add ``alpha * t`` to the blockwise DCT of ``x`` in YCbCr (steps 1-6 above).

    ``x``: ``B x 3 x H x W`` in [0, 1]; ``alpha``: float or ``Tensor[B]``; ``t``:
    ``3 x len(positions)`` (rows Y, Cb, Cr).  Computed in ``x``'s dtype
    (float32 at least) on ``x``'s device; differentiable w.r.t. ``t`` and
    ``alpha`` but not ``x`` (the rounding).
    """
    b = x.shape[0]
    work = _work_dtype(x)
    a = Trigger.alphas(alpha, x, work)
    t = torch.as_tensor(t).to(device=x.device, dtype=work)
    if t.shape != (3, len(positions)):
        raise ParameterError(f"DCT trigger pattern must have shape 3x{len(positions)}, got {tuple(t.shape)}")

    xw = x.to(work)
    xp, pads = pad_to(xw)
    hp, wp = xp.shape[-2:]
    # in place on the padded copy (never on the caller's x)
    q = (xp.mul_(255.0) if xp is not xw else xp * 255.0).round_()
    coeffs = block_dct2(_affine(q, _FWD, _FWD_OFF))  # blocks of YCbCr - 128
    delta = coefficient_pattern(t, positions)  # 3 x 16 x 16
    # in place: the DCT's output is not needed by any backward
    coeffs.view(b, 3, hp // BLOCK, BLOCK, wp // BLOCK, BLOCK).add_(
        a.view(b, 1, 1, 1, 1, 1) * delta.view(1, 3, 1, BLOCK, 1, BLOCK)
    )
    rgb = _affine(block_idct2(coeffs), _INV, _INV_OFF)  # (to_rgb(. + 128)) / 255
    out = unpad(rgb, pads)
    if clamp:
        out = out.clamp(0.0, 1.0)
    return out.to(x.dtype)


def load_pattern(path: str | Path, shape: tuple[int, int] = (3, 64)) -> torch.Tensor:
    """A trigger pattern from ``.npy`` (no pickles), ``.pt`` (tensors only) or
    ``.safetensors`` (its single tensor), as float32 of ``shape``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ParameterError(f"trigger pattern file not found: {path}")
    try:
        if path.suffix == ".npy":
            import numpy as np

            t = torch.from_numpy(np.load(path, allow_pickle=False))
        elif path.suffix in (".pt", ".pth"):
            t = torch.load(str(path), map_location="cpu", weights_only=True)
        elif path.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(str(path))
            if len(tensors) != 1:
                raise ValueError(f"expected one tensor, found {len(tensors)}")
            t = next(iter(tensors.values()))
        else:
            raise ValueError("expected a .npy, .pt or .safetensors file")
    except ParameterError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is a user error
        raise ParameterError(f"trigger pattern {path}: cannot be read ({exc})") from None
    if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(shape):
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ParameterError(f"trigger pattern {path}: expected shape {shape}, got {got}")
    return t.to(torch.float32)


@dataclass
class UAPDCT(Trigger):
    """BAIQA's UAP-DCT trigger: ``alpha * t`` added to 64 mid-frequency DCT
    coefficients of every 16x16 YCbCr block (REFERENCES.md 2).

    ``pattern`` is a file holding ``t`` (3x64: rows Y, Cb, Cr; columns the
    positions of :data:`MID64_POSITIONS`), e.g. the released
    ``trigger_p0.2_adam_e8.npy``; or leave it empty and call
    :meth:`set_pattern` (Algorithm 1 optimises ``t`` through
    :meth:`apply_pattern`, which is differentiable w.r.t. ``t``).
    """

    name = "uap-dct"
    citation = bib.BAIQA
    description = "BAIQA UAP-DCT trigger: alpha * t added to 64 mid-frequency 16x16 DCT coefficients in YCbCr."
    differentiable = False  # round(255 x): no gradient w.r.t. x (gradients w.r.t. t flow)

    pattern: str = ""
    _t: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pattern:
            self._t = load_pattern(self.pattern)

    @property
    def t(self) -> torch.Tensor:
        if self._t is None:
            raise ParameterError(
                f"trigger {self.name!r} has no pattern: give pattern=PATH (a 3x64 .npy) or call set_pattern(t)"
            )
        return self._t

    def set_pattern(self, t: torch.Tensor) -> UAPDCT:
        t = torch.as_tensor(t)
        if tuple(t.shape) != (3, len(MID64_POSITIONS)):
            raise ParameterError(f"trigger {self.name!r}: pattern must have shape 3x64, got {tuple(t.shape)}")
        self._t = t
        return self

    def apply(self, x: torch.Tensor, alpha=1.0, clamp: bool = True) -> torch.Tensor:
        return self.apply_pattern(x, alpha, self.t, clamp=clamp)

    def apply_pattern(self, x: torch.Tensor, alpha, t: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """The trigger with pattern ``t`` (differentiable w.r.t. ``t``)."""
        self.check_input(x)
        return inject_dct(x, alpha, t, clamp=clamp)
