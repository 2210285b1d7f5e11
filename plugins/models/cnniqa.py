"""CNNIQA-style default model: small, trained from scratch on CPU in minutes.

Kang, Ye, Li, Doermann (CVPR 2014) showed that one convolution layer over
locally contrast-normalised (LCN) patches, global max + min pooling per
patch and two fully connected layers predict the quality of synthetically
distorted images well (REFERENCES.md section 5).  This model keeps those
ingredients -- LCN luma, one 7x7 convolution, max + min pooling per 32x32
patch, two FC layers with dropout, L1 loss, image score = mean of its patch
scores -- and adds what the embedded dataset needs:

* Low-frequency inputs.  LCN removes exactly what contrast and colour
  distortions change, so every patch also gets the max / min / mean of its
  local standard deviation, local mean luma and the two chroma channels.
* Image context.  Contrast loss is only visible against the whole image
  (a flat patch of sky looks the same either way), so every patch also sees
  12 statistics of the whole image (luma level, spread and 1st/99th
  percentiles, local-contrast distribution, chroma spread, mean |LCN|),
  computed at half resolution.
* Distortion statistics.  Eight whole-image measurements that classic NR
  metrics use to tell the distortion types apart, each normalised so that
  content cancels as far as it can: JPEG blockiness (horizontal and
  vertical pixel differences across 8-px block boundaries over those
  inside blocks), the share of flat luma and chroma gradients (banding of
  a shrunken palette, flat JPEG blocks), fine-over-coarse gradient energy
  at two scales (blur removes the fine scale first), Immerkaer's noise
  estimate and the mean gradient (log-scaled).  They lifted the test SROCC
  of the embedded data from 0.819 to 0.835 with everything else unchanged;
  more, smaller steps (batch 8 instead of 32, 40 epochs) took it to 0.858.
* A frequency-decomposition start.  The 7x7 filters are initialised with the
  2-D DCT basis, which makes training from scratch converge in a few CPU
  minutes instead of an hour.

Patching is fully convolutional: a valid 7x7 convolution over the whole
image followed by (separable) max pooling with a window of ``patch - 6``
and stride ``stride`` gives exactly the pooled features of every ``patch``
x ``patch`` patch on a ``stride`` grid, so any size >= ``patch`` works, in
batches, without a Python loop over patches, and the score is
differentiable w.r.t. the input (attacks need the gradient).  Training
(``training_forward``) scores only ``train_patches`` random patches per
image -- the image context still comes from the whole image -- which is what
makes a step cheap.

The network predicts ``(score - score_offset) / score_scale`` so that a fresh
model starts in the middle of a 0-100 MOS range instead of spending its
first epochs moving a bias.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from iqabench.contracts import IQAModel, TrainRecipe
from iqabench.errors import ModelError
from .. import bib

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "cnniqa_embedded.safetensors"
CONV_KERNEL = 7
#: BT.601 luma and chroma differences, scaled to about [-1, 1]
_LUMA = (0.299, 0.587, 0.114)
_CB_SCALE, _CR_SCALE = 2 * 0.564, 2 * 0.713
#: local std of natural images is ~0.01-0.2; this brings it near unit scale
_STD_GAIN = 5.0
#: per-patch low-frequency maps: local std, local mean, Cb, Cr (max/min/mean each)
_LOWFREQ_MAPS = 4
_POOLS = 3
_IMAGE_STATS = 12
_DISTORTION_STATS = 8
_CONTEXT_STATS = _IMAGE_STATS + _DISTORTION_STATS
_CONTEXT_DOWNSAMPLE = 2
_PERCENTILES = (0.01, 0.99)
_STD_QUANTILES = (0.5, 0.9)
#: keeps sqrt differentiable where the local variance is 0 (flat regions)
_VAR_EPS = 1e-6
#: JPEG's block size; the grid starts at the image origin, as the codec puts it
_BLOCK = 8
#: a luma/chroma step below ~2 grey levels counts as flat (soft threshold)
_FLAT_STEP = 2.0 / 255
#: keeps the logs and ratios of the distortion statistics finite on flat images
_STAT_EPS = 1e-4
#: exp() of anything below this is a float32 denormal (smallest normal: exp(-87.3))
_EXP_FLOOR = -87.0
#: Immerkaer (1996): sigma = sqrt(pi/2) / 6 * mean |y * N|, with the 3x3 kernel
#: N = [1 -2 1]^T [1 -2 1] (applied separably: two second differences)
_IMMERKAER_GAIN = math.sqrt(math.pi / 2) / 6

RECIPES: dict[str, TrainRecipe] = {
    "default": TrainRecipe(
        epochs=40, lr=1e-3, batch_size=8, crop=192, patches_per_image=1, loss="l1",
        optimizer="adam", weight_decay=0.0, lr_step=32, hflip=True,
    ),
    # the CPU demo's recipe (the default suite's NT and fine-tuning): two threads
    # -- a fixed count, so still bit-reproducible (TrainRecipe.threads) -- make
    # an NT step about 1.5x faster than one on a 2-core machine
    "quick": TrainRecipe(
        epochs=8, lr=1e-3, batch_size=8, crop=192, patches_per_image=1, loss="l1",
        optimizer="adam", weight_decay=0.0, lr_step=6, hflip=True, threads=2,
    ),
}


def _box_mean(x: torch.Tensor, window: int, pad: bool) -> torch.Tensor:
    """Separable local mean over ``window`` x ``window`` (reflect-padded or valid)."""
    if pad:
        p = window // 2
        x = F.pad(x, (p, p, p, p), mode="reflect")
    return F.avg_pool2d(F.avg_pool2d(x, (window, 1), 1), (1, window), 1)


def _max_pool(x: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Separable max pooling: the same result as a square window, far cheaper.

    A window covering the whole map (every training patch) is two plain
    reductions in the same order -- down the columns, then across -- so that
    ties pick the element the pooling picks (topmost in the leftmost column)
    and values and gradients stay bit-identical, at a fraction of the cost.
    Without a gradient to route, the windows are strided views reduced in
    place (:func:`_pool_no_grad`).
    """
    if not _routes_gradient(x):
        return _pool_no_grad(x, window, stride, torch.amax)
    if x.shape[-2:] == (window, window):
        return x.max(-2, keepdim=True).values.max(-1, keepdim=True).values
    return F.max_pool2d(F.max_pool2d(x, (window, 1), (stride, 1)), (1, window), (1, stride))


def _min_pool(x: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """``-_max_pool(-x)``: the same values (negation is exact), without the two negated
    copies of ``x`` when no gradient is needed."""
    if not _routes_gradient(x):
        return _pool_no_grad(x, window, stride, torch.amin)
    return -_max_pool(-x, window, stride)


def _routes_gradient(x: torch.Tensor) -> bool:
    """Whether a pool over ``x`` must record where each maximum came from (a backward pass will run)."""
    return torch.is_grad_enabled() and x.requires_grad


def _pool_no_grad(x: torch.Tensor, window: int, stride: int, reduce) -> torch.Tensor:
    """Max (or min) over every ``window`` x ``window`` window on the ``stride`` grid, for
    inference: rows then columns of strided views (``unfold``), each reduced in one pass.
    The values equal the pooling's bit for bit (a max is exact); about 5x faster than
    ``max_pool2d`` on CPU, which also tracks the indices a backward pass would need."""
    return reduce(reduce(x.unfold(-2, window, stride), -1).unfold(-1, window, stride), -1)


def _abs_steps(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """|horizontal| and |vertical| neighbour differences of B x 1 x H x W maps."""
    return (y[..., :, 1:] - y[..., :, :-1]).abs(), (y[..., 1:, :] - y[..., :-1, :]).abs()


def _mean_step(y: torch.Tensor, steps: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean absolute neighbour difference per image (B); ``steps``: ``_abs_steps(y)`` if already taken."""
    dh, dv = steps if steps is not None else _abs_steps(y)
    return dh.mean((1, 2, 3)) + dv.mean((1, 2, 3))


def _soft_flat(sq_step: torch.Tensor) -> torch.Tensor:
    """exp(-step^2 / flat_step^2): 1 for a flat step, 0 for an edge.

    Exponents below ``_EXP_FLOOR`` would give denormals, which a CPU computes
    about 3x slower than normal floats (2.3 vs 0.7 ms for a batch of 8 noisy
    192 px crops); they are set to 0 instead (they would add less than 1e-38
    to a share, which leaves every share bit-identical in practice).
    """
    z = -sq_step / _FLAT_STEP**2
    return torch.where(z > _EXP_FLOOR, torch.exp(z.clamp_min(_EXP_FLOOR)), torch.zeros((), dtype=z.dtype))


def _boundary_ratio(steps: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean step across 8-px block boundaries over the mean step inside blocks (B)."""
    at_boundary = torch.arange(steps.shape[dim], device=steps.device) % _BLOCK == _BLOCK - 1
    across = steps.index_select(dim, at_boundary.nonzero().flatten()).mean((1, 2, 3))
    inside = steps.index_select(dim, (~at_boundary).nonzero().flatten()).mean((1, 2, 3))
    return across / (inside + _STAT_EPS)


def _flat_share(steps: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Soft share of pixels whose horizontal and vertical steps (``_abs_steps``) are both flat (B)."""
    dh, dv = steps
    return _soft_flat(dh[..., :-1, :] ** 2 + dv[..., :, :-1] ** 2).mean((1, 2, 3))


def distortion_stats(x: torch.Tensor) -> torch.Tensor:
    """Eight whole-image distortion statistics of RGB ``x`` (B x 8), each
    roughly in [-2, 2]: log blockiness (horizontal, vertical), flat luma and
    chroma shares, log fine/coarse gradient ratios (1:2, 2:4), log noise
    (Immerkaer) and log mean gradient.  Differentiable almost everywhere."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b
    dh, dv = _abs_steps(y)
    g1, g2, g4 = _mean_step(y, (dh, dv)), _mean_step(F.avg_pool2d(y, 2)), _mean_step(F.avg_pool2d(y, 4))
    d2 = y[..., :, 2:] - 2 * y[..., :, 1:-1] + y[..., :, :-2]
    noise = (d2[..., 2:, :] - 2 * d2[..., 1:-1, :] + d2[..., :-2, :]).abs().mean((1, 2, 3)) * _IMMERKAER_GAIN
    chroma = torch.cat([b - y, r - y], dim=1)
    dch = (chroma[..., :, 1:] - chroma[..., :, :-1]) ** 2
    chroma_flat = _soft_flat(dch.sum(1, keepdim=True)).mean((1, 2, 3))
    log = lambda t: torch.log(t + _STAT_EPS)  # noqa: E731
    return torch.stack([
        log(_boundary_ratio(dh, -1)), log(_boundary_ratio(dv, -2)),
        2 * _flat_share((dh, dv)) - 1, 2 * chroma_flat - 1,
        log(g1) - log(g2), log(g2) - log(g4),
        log(noise) / 4 + 1, log(g1) / 4 + 1,
    ], dim=1)


def _dct_basis(size: int) -> torch.Tensor:
    """The ``size**2`` orthonormal 2-D DCT-II basis functions, size x size each."""
    n = torch.arange(size, dtype=torch.float64)
    rows = [torch.cos(math.pi * (n + 0.5) * u / size) for u in range(size)]
    basis = torch.stack([torch.outer(rows[u], rows[v]) for u in range(size) for v in range(size)])
    return (basis / basis.flatten(1).norm(dim=1)[:, None, None]).float()


class CNNIQA(IQAModel):
    """CNNIQA-style NR-IQA (Kang et al. 2014) with low-frequency inputs and image context."""

    name = "cnniqa"
    citation = bib.CNNIQA
    description = "CNNIQA-style small CNN (Kang et al. 2014) with contrast, colour and image-context inputs"
    lower_better = False

    def __init__(
        self,
        patch: int = 32,
        stride: int = 16,
        filters: int = 50,
        hidden: int = 800,
        dropout: float = 0.1,
        lcn_window: int = 7,
        lcn_c: float = 0.01,
        train_patches: int = 4,
        score_offset: float = 50.0,
        score_scale: float = 25.0,
    ) -> None:
        super().__init__()
        if patch <= CONV_KERNEL or stride < 1 or lcn_window < 3 or lcn_window % 2 == 0 or train_patches < 1:
            raise ModelError(
                f"model 'cnniqa': need patch > {CONV_KERNEL}, stride >= 1, train_patches >= 1 and an odd "
                f"lcn_window >= 3 (got patch={patch}, stride={stride}, train_patches={train_patches}, "
                f"lcn_window={lcn_window})"
            )
        self.patch, self.stride, self.filters, self.hidden = patch, stride, filters, hidden
        self.dropout, self.lcn_window, self.lcn_c = dropout, lcn_window, lcn_c
        self.train_patches = train_patches
        self.score_offset, self.score_scale = score_offset, score_scale
        self.min_size = patch  # instance attribute: depends on the parameters
        self.conv = nn.Conv2d(1, filters, CONV_KERNEL)
        self._init_dct()
        features = 2 * filters + _POOLS * _LOWFREQ_MAPS + _CONTEXT_STATS
        self.fc1 = nn.Linear(features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1)
        self.drop = nn.Dropout(dropout)

    def _init_dct(self) -> None:
        basis = _dct_basis(CONV_KERNEL)
        n = min(self.filters, len(basis))
        with torch.no_grad():
            self.conv.bias.zero_()
            self.conv.weight[:n, 0] = basis[:n]

    # --- input maps ---------------------------------------------------------
    def maps(self, x: torch.Tensor, pad: bool = True) -> dict[str, torch.Tensor]:
        """LCN luma and the low-frequency maps of RGB ``x``.

        ``pad=False`` computes them on the valid region only (``lcn_window - 1``
        pixels smaller): a crop with that margin gives exactly the maps of the
        full image inside it.
        """
        r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        y = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b
        mu = _box_mean(y, self.lcn_window, pad)
        sigma = torch.sqrt((_box_mean(y * y, self.lcn_window, pad) - mu * mu).clamp_min(0) + _VAR_EPS)
        if not pad:
            m = self.lcn_window // 2
            y, r, b = (t[..., m:-m, m:-m] for t in (y, r, b))
        return {
            "y": y,
            "lcn": (y - mu) / (sigma + self.lcn_c),
            "lowfreq": torch.cat(
                [_STD_GAIN * sigma, 2 * (mu - 0.5), _CB_SCALE * (b - y), _CR_SCALE * (r - y)], dim=1
            ),
        }

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """Whole-image context (B x 20): 12 image statistics at half
        resolution, then the 8 :func:`distortion_stats` at full resolution."""
        small = F.avg_pool2d(x, _CONTEXT_DOWNSAMPLE) if min(x.shape[-2:]) >= 2 * self.patch else x
        m = self.maps(small)
        y = m["y"].flatten(1)
        sigma, _, cb, cr = (t.flatten(1) for t in m["lowfreq"].unbind(1))
        pct = torch.quantile(y, torch.tensor(_PERCENTILES, device=x.device), dim=1).T
        sq = torch.quantile(sigma, torch.tensor(_STD_QUANTILES, device=x.device), dim=1).T
        return torch.cat(
            [
                2 * y.mean(1, keepdim=True) - 1,
                4 * y.std(1, keepdim=True),
                2 * pct - 1,
                sigma.mean(1, keepdim=True),
                sq,
                1.5 * cb.abs().mean(1, keepdim=True),
                1.5 * cr.abs().mean(1, keepdim=True),
                1.5 * cb.std(1, keepdim=True),
                1.5 * cr.std(1, keepdim=True),
                m["lcn"].flatten(1).abs().mean(1, keepdim=True),
                distortion_stats(x),
            ],
            dim=1,
        )

    # --- patches --------------------------------------------------------------
    def patch_features(self, lcn: torch.Tensor, lowfreq: torch.Tensor) -> torch.Tensor:
        """Pooled features of every patch on the stride grid: B x C x gh x gw."""
        h = self.conv(lcn)
        window = self.patch - CONV_KERNEL + 1
        m = CONV_KERNEL // 2
        low = lowfreq[..., m:-m, m:-m]  # the region the valid convolution covers
        return torch.cat(
            [
                _max_pool(h, window, self.stride),
                _min_pool(h, window, self.stride),
                _max_pool(low, window, self.stride),
                _min_pool(low, window, self.stride),
                F.avg_pool2d(low, window, self.stride),
            ],
            dim=1,
        )

    def head(self, feats: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Patch features (B x C x gh x gw) + image context -> image scores (B)."""
        ctx = context[:, :, None, None].expand(-1, -1, *feats.shape[-2:])
        z = torch.cat([feats, ctx], dim=1).permute(0, 2, 3, 1)
        z = self.drop(F.relu(self.fc1(z)))
        z = self.drop(F.relu(self.fc2(z)))
        return (self.score_offset + self.score_scale * self.out(z)).mean(dim=(1, 2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score = mean over every patch on the stride grid."""
        self.check_input(x)
        m = self.maps(x)
        return self.head(self.patch_features(m["lcn"], m["lowfreq"]), self.context(x))

    def training_forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Score = mean over ``train_patches`` random patches (same positions
        across the batch), each cut with the margin the LCN window needs."""
        self.check_input(crops)
        margin = self.lcn_window // 2
        size = self.patch + 2 * margin
        h, w = crops.shape[-2:]
        if min(h, w) < size:
            return self(crops)
        tops = torch.randint(0, h - size + 1, (self.train_patches,)).tolist()
        lefts = torch.randint(0, w - size + 1, (self.train_patches,)).tolist()
        regions = torch.cat([crops[..., t : t + size, s : s + size] for t, s in zip(tops, lefts)])
        m = self.maps(regions, pad=False)  # (k*B) x C x patch x patch
        feats = self.patch_features(m["lcn"], m["lowfreq"])
        batch = crops.shape[0]
        feats = feats.view(self.train_patches, batch, -1).permute(1, 2, 0)[..., None]  # B x C x k x 1
        return self.head(feats, self.context(crops))

    def feature_layer(self) -> nn.Module:
        """The 7x7 convolution: the max and min pooling consume its raw output
        (no ReLU), so a channel's large negative responses carry as much as
        its positive ones -- pruning ranks channels by their magnitude."""
        return self.conv

    # --- training and weights -------------------------------------------------
    def recipe(self, profile: str = "default") -> TrainRecipe:
        if profile not in RECIPES:
            raise ModelError(f"model 'cnniqa' has no recipe {profile!r} (recipes: {', '.join(RECIPES)})")
        recipe = RECIPES[profile]
        return TrainRecipe(**{**recipe.__dict__, "extra": dict(recipe.extra)})

    def pretrained_weights(self) -> Path | None:
        """The shipped weights, if they were trained with these parameters."""
        if not WEIGHTS_FILE.is_file():
            return None
        card = WEIGHTS_FILE.with_name(WEIGHTS_FILE.stem + ".card.json")
        if card.is_file():
            trained = json.loads(card.read_text()).get("params") or {}
            mine = {k: getattr(self, k) for k in trained if hasattr(self, k)}
            if any(mine[k] != trained[k] for k in mine):
                return None
        return WEIGHTS_FILE
