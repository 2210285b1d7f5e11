"""CNNIQA-style default model: small, trained from scratch on CPU in minutes.

Kang, Ye, Li, Doermann (CVPR 2014) showed that one convolution layer over
locally contrast-normalised patches, global max + min pooling per patch and
two fully connected layers predict the quality of synthetically distorted
images well (REFERENCES.md section 5).  This implementation keeps those
ingredients and changes two things:

* Input channels.  LCN alone removes exactly what contrast and colour
  distortions change, so besides the LCN luma the network sees the local
  standard deviation and local mean of the luma and the two chroma
  channels (YCbCr).  All are computed inside ``forward`` from RGB in [0,1].
* Fully convolutional patching.  A valid 7x7 convolution over the whole
  image followed by max/min pooling with a window of ``patch - 6`` and
  stride ``stride`` gives exactly the per-patch pooled features of every
  ``patch`` x ``patch`` patch on a ``stride`` grid; the FC layers are 1x1
  convolutions, and the image score is the mean over its patches.  No
  Python loop, any input size >= ``patch``, differentiable w.r.t. the input
  (attacks need the gradient).

The network predicts ``(score - score_offset) / score_scale`` so that a fresh
model starts in the middle of a 0-100 MOS range instead of spending its
first epochs moving a bias.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from iqabench.contracts import IQAModel, TrainRecipe
from iqabench.errors import ModelError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "cnniqa_embedded.safetensors"
CONV_KERNEL = 7
#: BT.601 luma and the chroma differences scaled to about [-0.5, 0.5]
_LUMA = (0.299, 0.587, 0.114)
_CB_SCALE, _CR_SCALE = 0.564, 0.713
#: local std of natural images is ~0.01-0.2; this brings it near unit scale
_STD_GAIN = 5.0
_INPUT_CHANNELS = 5  # LCN luma, local std, local mean, Cb, Cr

RECIPES: dict[str, TrainRecipe] = {
    "default": TrainRecipe(
        epochs=30, lr=1e-3, batch_size=64, crop=64, patches_per_image=2, loss="l1",
        optimizer="adam", weight_decay=0.0, lr_step=20, hflip=True,
    ),
    "quick": TrainRecipe(
        epochs=8, lr=1e-3, batch_size=64, crop=64, patches_per_image=2, loss="l1",
        optimizer="adam", weight_decay=0.0, lr_step=6, hflip=True,
    ),
}


def _box_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Local mean over a ``window`` x ``window`` neighbourhood (reflect padding)."""
    pad = window // 2
    return F.avg_pool2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), window, stride=1)


class CNNIQA(IQAModel):
    """CNNIQA-style NR-IQA: LCN + chroma inputs, 7x7 conv, max/min pooling, 2 FC."""

    name = "cnniqa"
    description = "CNNIQA-style small CNN (Kang et al. 2014) with contrast and colour inputs"
    lower_better = False

    def __init__(
        self,
        patch: int = 32,
        stride: int = 16,
        filters: int = 50,
        hidden: int = 800,
        dropout: float = 0.5,
        lcn_window: int = 7,
        lcn_c: float = 0.01,
        score_offset: float = 50.0,
        score_scale: float = 25.0,
    ) -> None:
        super().__init__()
        if patch <= CONV_KERNEL or stride < 1 or lcn_window < 3 or lcn_window % 2 == 0:
            raise ModelError(
                f"model 'cnniqa': need patch > {CONV_KERNEL}, stride >= 1 and an odd lcn_window >= 3 "
                f"(got patch={patch}, stride={stride}, lcn_window={lcn_window})"
            )
        self.patch, self.stride, self.filters, self.hidden = patch, stride, filters, hidden
        self.dropout, self.lcn_window, self.lcn_c = dropout, lcn_window, lcn_c
        self.score_offset, self.score_scale = score_offset, score_scale
        self.min_size = patch  # instance attribute shadows the class default
        self.conv = nn.Conv2d(_INPUT_CHANNELS, filters, CONV_KERNEL)
        self.head = nn.Sequential(
            nn.Conv2d(2 * filters, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(hidden, 1, 1),
        )

    # --- features ---------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0,1] -> the 5 input channels (same spatial size)."""
        r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        y = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b
        cb, cr = _CB_SCALE * (b - y), _CR_SCALE * (r - y)
        mu = _box_mean(y, self.lcn_window)
        var = (_box_mean(y * y, self.lcn_window) - mu * mu).clamp_min(0)
        # sqrt has an infinite derivative at 0: keep flat regions differentiable
        sigma = torch.sqrt(var + 1e-6)
        lcn = (y - mu) / (sigma + self.lcn_c)
        return torch.cat([lcn, _STD_GAIN * sigma, mu - 0.5, cb, cr], dim=1)

    def patch_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Score of every ``patch`` x ``patch`` patch on the stride grid: B x 1 x h x w."""
        self.check_input(x)
        h = self.conv(self.features(x))
        window = self.patch - CONV_KERNEL + 1
        pooled = torch.cat(
            [F.max_pool2d(h, window, self.stride), -F.max_pool2d(-h, window, self.stride)], dim=1
        )
        return self.score_offset + self.score_scale * self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_scores(x).mean(dim=(1, 2, 3))

    # --- training and weights ---------------------------------------------
    def recipe(self, profile: str = "default") -> TrainRecipe:
        if profile not in RECIPES:
            raise ModelError(f"model 'cnniqa' has no recipe {profile!r} (recipes: {', '.join(RECIPES)})")
        recipe = RECIPES[profile]
        return TrainRecipe(**{**recipe.__dict__, "extra": dict(recipe.extra)})

    def pretrained_weights(self) -> Path | None:
        return WEIGHTS_FILE if WEIGHTS_FILE.is_file() else None
