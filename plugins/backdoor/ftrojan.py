"""FTrojan baseline (Wang et al., ECCV 2022) as the BAIQA paper ran it.

A fixed magnitude added to the same 64 mid-frequency coefficients of every
16x16 block as the UAP-DCT trigger, in the chroma channels Cb and Cr only
(REFERENCES.md 2: magnitude 66 at alpha = 1 on LIVEC; halve it for
KonIQ-10k).  It is the UAP-DCT injection pipeline with the pattern
``t = [0; m; m]`` (rows Y, Cb, Cr): same padding, rounding to 8 bits, colour
transform, block DCT and clamp, so that the two are comparable.  The BAIQA
release does not include its baseline code; the injection details are
therefore those of our UAP-DCT pipeline.  ``alpha`` scales the magnitude,
sign included.

Units, and what a luma-only model sees.  ``magnitude`` is in the unit of the
release's unnormalised 16x16 DCT-II (the unit of the UAP-DCT pattern ``t``,
whose released values average 353 / 140 / 111 in Y / Cb / Cr).  At 66 the
trigger is faint: on 16 LIVEC photographs at 256x256 it changes Cb and Cr by
0.63 grey levels on average and luma by 0.01 (PSNR 44.9 dB), against 5.3 in
luma for the released UAP-DCT trigger (30.1 dB).  The paper's 0.51 mMRA on
HyperIQA (REFERENCES.md 2) comes from a network whose convolutions see all
three colour channels; the default model ``cnniqa`` convolves luma only and
sees chroma through local means and extremes per 32 px patch, so the
trigger barely reaches it (P-BAIQA mMRA 0.007 on the committed board).
If the paper meant an orthonormal DCT, its 66 is 32x this one
(``magnitude=2112``); the release has no baseline code to tell.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from iqabench.contracts import Trigger
from iqabench.errors import ParameterError

from .uap_dct import MID64_POSITIONS, inject_dct
from .. import bib


@dataclass
class FTrojan(Trigger):
    """FTrojan: a fixed magnitude on 64 mid-frequency DCT coefficients of Cb and Cr."""

    name = "ftrojan"
    citation = bib.FTROJAN
    description = "FTrojan baseline: fixed magnitude on 64 mid-frequency 16x16 DCT coefficients of Cb and Cr."
    differentiable = False  # the 8-bit rounding of the DCT pipeline

    magnitude: float = 66.0

    def __post_init__(self) -> None:
        if not self.magnitude == self.magnitude or abs(self.magnitude) == float("inf"):
            raise ParameterError(f"trigger {self.name!r} parameter 'magnitude' must be finite, got {self.magnitude!r}")

    def dct_pattern(self) -> torch.Tensor:
        """The equivalent UAP-DCT pattern ``t`` (3x64): 0 for Y, ``magnitude`` for Cb and Cr."""
        t = torch.full((3, len(MID64_POSITIONS)), float(self.magnitude), dtype=torch.float64)
        t[0] = 0.0
        return t

    def apply(self, x: torch.Tensor, alpha=1.0, clamp: bool = True) -> torch.Tensor:
        self.check_input(x)
        return inject_dct(x, alpha, self.dct_pattern(), clamp=clamp)
