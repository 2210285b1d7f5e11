"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan, Bovik,
IEEE SPL 2013), batched in torch.  AMI-FGSM needs it: its per-image L-inf
bound is ``1 / NIQE(x)`` (REFERENCES.md section 1).

The algorithm, as in the authors' MATLAB release (``niqe_release``):

* grey image ``Y = round(255 * rgb2gray(x))`` (MATLAB's rgb2gray weights),
  cropped to a multiple of the 96 x 96 patch size;
* MSCN coefficients ``(Y - mu) / (sigma + 1)`` with ``mu`` and ``sigma`` the
  local mean and standard deviation under a 7 x 7 Gaussian window, sigma 7/6,
  replicate padding;
* per 96 x 96 patch, 18 features: an AGGD fit of the MSCN coefficients
  (shape, mean of the left/right scales) and, for the products of
  horizontally, vertically and both diagonally adjacent coefficients
  (circular shifts inside the patch), AGGD shape, mean, left and right
  scales; the same again on the image halved by MATLAB's bicubic
  anti-aliased ``imresize`` (48 x 48 patches) -- 36 features per patch;
* AGGD shape by moment matching on the grid 0.2:0.001:10;
* a test image's patches are summarised by their mean ``mu2`` and covariance
  ``S2`` and ``NIQE = sqrt((mu1 - mu2)^T pinv((S1 + S2) / 2) (mu1 - mu2))``
  against the pristine model ``(mu1, S1)``.

The pristine model
------------------
The authors fitted ``(mu1, S1)`` on 125 pristine photographs, keeping only
the patches whose sharpness (mean local sigma) exceeds 0.75 of the image's
sharpest patch; pyiqa ships that fit as ``niqe_modelparameters.mat`` but
downloads it on first use.  We use that file only when it is already on
disk (``$IQABENCH_NIQE_PARAMS``, or pyiqa's cache directory); we never
download it.  Otherwise the MVG is FITTED here with the same procedure on
the pristine crops of the embedded dataset's *train* split (items whose name
contains ``"pristine"``; the test split stays unseen) and stored as a
versioned safetensors artifact in ``cache_dir("niqe")``.  The two models
give different absolute NIQE values: :func:`niqe_model_info` says which one
is in use so that every run can record it.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F

from iqabench.errors import IQABenchError

#: bump whenever the features or the fitting procedure change
NIQE_VERSION = 1
PATCH = 96
SHARPNESS_THRESHOLD = 0.75
N_FEATURES = 36
#: MATLAB's rgb2gray weights
_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
_PYIQA_FILE = "niqe_modelparameters.mat"


# ------------------------------------------------------------ primitives ---
def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def to_gray255(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0,1] (Bx3xHxW) -> MATLAB ``rgb2gray`` of the uint8 image, as
    float B x 1 x H x W in 0..255 (integers)."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise IQABenchError(f"NIQE expects B x 3 x H x W (or B x 1 x H x W) images, got {tuple(x.shape)}")
    x = x.to(_work_dtype(x.device))
    if x.shape[1] == 3:
        q = torch.round(x.clamp(0, 1) * 255.0)  # the uint8 image MATLAB would read
        y = _GRAY[0] * q[:, 0:1] + _GRAY[1] * q[:, 1:2] + _GRAY[2] * q[:, 2:3]
    else:
        y = x.clamp(0, 1) * 255.0
    return torch.round(y)


@functools.lru_cache(maxsize=None)
def _gauss_taps() -> tuple[float, ...]:
    """1-D factor of ``fspecial('gaussian', 7, 7/6)``: the 7x7 window is the
    outer product of these taps (both are normalised to sum 1)."""
    sigma = 7.0 / 6.0
    g = [math.exp(-(t * t) / (2 * sigma * sigma)) for t in range(-3, 4)]
    total = math.fsum(g)
    return tuple(v / total for v in g)


def _gauss_filter(y: torch.Tensor) -> torch.Tensor:
    """7x7 Gaussian filtering with replicate padding, as two 1-D passes of
    shifted slices (a float64 single-channel conv2d is far slower on CPU)."""
    taps = _gauss_taps()
    p = F.pad(y, (3, 3, 3, 3), mode="replicate")
    h, w = y.shape[-2:]
    rows = taps[0] * p[..., 0:h, :]
    for k in range(1, 7):
        rows.add_(p[..., k:k + h, :], alpha=taps[k])
    out = taps[0] * rows[..., 0:w]
    for k in range(1, 7):
        out.add_(rows[..., k:k + w], alpha=taps[k])
    return out


class _SqrtZeroSafe(torch.autograd.Function):
    """``sqrt(v)`` for ``v >= 0`` whose gradient at ``v = 0`` is 0 (the subgradient
    of a norm at 0), not ``inf``: a flat 7x7 window of an 8-bit image has local
    variance exactly 0, and ``inf * d|var|/dvar (= 0)`` would make the whole
    input gradient NaN.  The forward value is exactly ``torch.sqrt``'s."""

    @staticmethod
    def forward(ctx, v: torch.Tensor) -> torch.Tensor:
        out = torch.sqrt(v)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return torch.where(out > 0, grad / (2 * out).clamp_min(torch.finfo(out.dtype).tiny), torch.zeros_like(grad))


def mscn(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MSCN coefficients and the local sigma map of a grey B x 1 x H x W image
    in 0..255 (7x7 Gaussian, sigma 7/6, replicate padding, C = 1).
    Differentiable everywhere, flat regions included (:class:`_SqrtZeroSafe`)."""
    mu = _gauss_filter(y)
    sigma = _SqrtZeroSafe.apply((_gauss_filter(y * y) - mu * mu).abs())
    return (y - mu) / (sigma + 1.0), sigma


def _cubic(t: torch.Tensor) -> torch.Tensor:
    a = t.abs()
    a2, a3 = a * a, a * a * a
    return (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1) + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((a > 1) & (a <= 2))


@functools.lru_cache(maxsize=32)
def _half_matrix(n: int, device: str = "cpu", dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The (n//2 ... ceil) x n matrix of MATLAB's ``imresize(., 0.5)`` along one
    axis: bicubic, anti-aliased (kernel width 8), symmetric boundary."""
    scale, width = 0.5, 4.0 / 0.5
    out = math.ceil(n * scale)
    i = torch.arange(1, out + 1, dtype=torch.float64)
    u = i / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    wts = scale * _cubic(scale * (u[:, None] - idx))
    wts = wts / wts.sum(1, keepdim=True)
    # symmetric boundary: 1..n, n..1, repeated (MATLAB's aux indexing)
    aux = torch.cat([torch.arange(n), torch.arange(n - 1, -1, -1)])
    src = aux[torch.remainder(idx.long() - 1, 2 * n)]
    mat = torch.zeros(out, n, dtype=torch.float64)
    mat.scatter_add_(1, src, wts)
    return mat.to(device, dtype)


def imresize_half(y: torch.Tensor) -> torch.Tensor:
    """MATLAB ``imresize(y, 0.5)`` (bicubic, antialiasing) of B x C x H x W."""
    mh = _half_matrix(y.shape[-2], str(y.device), y.dtype)
    mw = _half_matrix(y.shape[-1], str(y.device), y.dtype)
    return mh @ y @ mw.T


@functools.lru_cache(maxsize=8)
def _r_grid(device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    # 0.2:0.001:10 exactly as MATLAB builds it (start + k * step)
    gam = 0.2 + 0.001 * torch.arange(9801, dtype=torch.float64)
    r = torch.exp(2 * torch.lgamma(2 / gam) - torch.lgamma(1 / gam) - torch.lgamma(3 / gam))
    return gam.to(device, dtype), r.to(device, dtype)


def aggd_fit(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric generalised Gaussian fit of each row of ``v`` (N x M):
    shape ``alpha`` and left/right scales (``estimateaggdparam.m``).  A row
    without negative or positive values gives NaN, as in MATLAB."""
    neg, pos = v < 0, v > 0
    sq = v * v
    left = torch.sqrt((sq * neg).sum(1) / neg.sum(1))  # 0/0 -> NaN
    right = torch.sqrt((sq * pos).sum(1) / pos.sum(1))
    gammahat = left / right
    rhat = v.abs().mean(1) ** 2 / sq.mean(1)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    gam, r = _r_grid(str(v.device), v.dtype)
    # r(gam) is increasing: the argmin of (r - rhatnorm)^2 is a neighbour of
    # the insertion point (ties go to the smaller shape, as MATLAB's min does)
    safe = torch.nan_to_num(rhatnorm, nan=0.0)
    hi = torch.searchsorted(r, safe.contiguous()).clamp(1, len(r) - 1)
    lo = hi - 1
    pick = torch.where((r[hi] - safe) ** 2 < (r[lo] - safe) ** 2, hi, lo)
    alpha = torch.where(torch.isfinite(rhatnorm), gam[pick], torch.full_like(rhatnorm, float("nan")))
    ratio = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    return alpha, left * ratio, right * ratio


_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def patch_features(blocks: torch.Tensor) -> torch.Tensor:
    """The 18 NIQE features of each MSCN block (N x P x P) -> N x 18."""
    n = blocks.shape[0]
    flat = blocks.reshape(n, -1)
    alpha, bl, br = aggd_fit(flat)
    feats = [alpha, (bl + br) / 2]
    for s in _SHIFTS:
        pair = flat * torch.roll(blocks, shifts=s, dims=(-2, -1)).reshape(n, -1)
        alpha, bl, br = aggd_fit(pair)
        mean = (br - bl) * torch.exp(torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha))
        feats += [alpha, mean, bl, br]
    return torch.stack(feats, dim=1)


def _blocks(m: torch.Tensor, p: int) -> torch.Tensor:
    """B x 1 x (nh p) x (nw p) -> B x (nh nw) x p x p, patches in row-major order."""
    b, _, h, w = m.shape
    nh, nw = h // p, w // p
    return m.reshape(b, nh, p, nw, p).permute(0, 1, 3, 2, 4).reshape(b, nh * nw, p, p)


def niqe_features(x: torch.Tensor, patch: int = PATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch features (B x K x 36) and sharpness (B x K) of RGB images in [0,1]."""
    y = to_gray255(x)
    h, w = y.shape[-2:]
    if h < patch or w < patch:
        raise IQABenchError(f"NIQE needs images of at least {patch}x{patch} (its patch size), got {w}x{h}")
    y = y[..., : h // patch * patch, : w // patch * patch]
    b = y.shape[0]
    out, sharp = [], None
    for scale in (1, 2):
        p = patch // scale
        coeffs, sigma = mscn(y)
        blocks = _blocks(coeffs, p)
        k = blocks.shape[1]
        out.append(patch_features(blocks.reshape(b * k, p, p)).reshape(b, k, -1))
        if scale == 1:
            sharp = _blocks(sigma, p).mean(dim=(-2, -1))
            y = imresize_half(y)
    return torch.cat(out, dim=-1), sharp


def _masked_mvg(f: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance (denominator n - 1; 0 for one row) of the rows of
    ``f`` (B x K x D) selected by ``mask`` (B x K), per image."""
    w = mask.to(f.dtype).unsqueeze(-1)
    f = torch.where(mask.unsqueeze(-1), f, torch.zeros_like(f))
    n = w.sum(1)  # B x 1
    mu = (f * w).sum(1) / n
    d = (f - mu.unsqueeze(1)) * w
    cov = d.transpose(1, 2) @ d / (n - 1).clamp_min(1).unsqueeze(-1)
    # no usable patch (e.g. a flat image): mean NaN, covariance 0 -> NIQE NaN
    return mu, torch.nan_to_num(cov, nan=0.0)


# ------------------------------------------------------------ the model ---
@dataclass
class NIQEModel:
    """A pristine multivariate Gaussian ``(mu, cov)``, what it is (``info``:
    source, file name, sha256 -- part of AMI-FGSM's cell key, so it names no
    machine-specific path) and the file it was read from (``path``)."""

    mu: torch.Tensor  # 36
    cov: torch.Tensor  # 36 x 36
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def fit_pristine(images: Iterable[torch.Tensor], patch: int = PATCH,
                 threshold: float = SHARPNESS_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Fit the pristine MVG on RGB images (each 3xHxW or Bx3xHxW in [0,1]).

    Keeps the patches sharper than ``threshold`` times the sharpest patch of
    their image and drops patches with a non-finite feature
    (``estimatemodelparam.m``).  Returns ``(mu, cov, n_patches)``.  Runs on
    the CPU in float64 so that the fit does not depend on the device.
    """
    groups: dict[tuple, list[torch.Tensor]] = {}
    for img in images:  # equal sizes share one batched feature pass
        img = img.detach().to("cpu", torch.float64)
        img = img.unsqueeze(0) if img.ndim == 3 else img
        groups.setdefault(tuple(img.shape[1:]), []).append(img)
    kept = []
    for imgs in groups.values():
        batch = torch.cat(imgs)
        for start in range(0, len(batch), 16):
            feats, sharp = niqe_features(batch[start: start + 16], patch)
            select = sharp > threshold * sharp.amax(dim=1, keepdim=True)
            f = feats[select]  # image-major, patches in row-major order
            kept.append(f[torch.isfinite(f).all(1)])
    if not kept:
        raise IQABenchError("NIQE: no pristine images to fit the model on")
    allf = torch.cat(kept)
    if len(allf) < 2:
        raise IQABenchError(f"NIQE: only {len(allf)} usable pristine patch(es); need at least 2")
    mu, cov = _masked_mvg(allf.unsqueeze(0), torch.ones(1, len(allf), dtype=torch.bool))
    return mu[0], cov[0], len(allf)


def _local_pyiqa_params() -> Path | None:
    """pyiqa's published NIQE parameters, if already on disk (never downloaded)."""
    candidates = []
    if os.environ.get("IQABENCH_NIQE_PARAMS"):
        candidates.append(Path(os.environ["IQABENCH_NIQE_PARAMS"]).expanduser())
    try:
        candidates.append(Path(torch.hub.get_dir()) / "pyiqa" / _PYIQA_FILE)
    except Exception:  # pragma: no cover - torch.hub without a home directory
        pass
    candidates.append(Path.home() / ".cache" / "torch" / "hub" / "pyiqa" / _PYIQA_FILE)
    for path in candidates:
        if path.is_file():
            return path
    return None


def _pyiqa_model(path: Path) -> NIQEModel:
    import scipy.io

    from iqabench.artifacts import file_digest

    try:
        mat = scipy.io.loadmat(str(path))
        mu = torch.as_tensor(mat["mu_prisparam"], dtype=torch.float64).reshape(-1)
        cov = torch.as_tensor(mat["cov_prisparam"], dtype=torch.float64)
    except Exception as exc:
        raise IQABenchError(f"NIQE parameters {path}: unreadable ({exc})") from None
    if mu.numel() != N_FEATURES or cov.shape != (N_FEATURES, N_FEATURES):
        raise IQABenchError(f"NIQE parameters {path}: expected a 36-D model, got mu {tuple(mu.shape)}")
    info = {"source": "published (Mittal et al. 2013, via pyiqa)", "file": path.name,
            "sha256": file_digest(path), "version": NIQE_VERSION, "patch": PATCH}
    return NIQEModel(mu, cov, info, path)


def _fitted_model(dataset_name: str = "embedded") -> NIQEModel:
    """Fit (or load the cached fit of) the MVG on the dataset's train pristine crops."""
    from safetensors import safe_open

    import iqabench
    from iqabench.artifacts import cache_dir, config_key, file_digest, load_state, save_state

    ds = iqabench.get_dataset(dataset_name)
    split = "train" if "train" in ds.splits() else ds.splits()[0]
    config = {"version": NIQE_VERSION, "dataset": ds.fingerprint(), "split": split,
              "patch": PATCH, "threshold": SHARPNESS_THRESHOLD}
    path = cache_dir("niqe") / f"niqe-mvg-{config_key(config)}.safetensors"
    if not path.exists():
        items = [it for it in ds.items(split) if "pristine" in it.name]
        if not items:
            raise IQABenchError(f"NIQE: dataset {dataset_name!r} split {split!r} has no pristine items to fit on")
        mu, cov, n = fit_pristine(ds.load(it) for it in items)
        meta = {**config, "source": f"fitted on {ds.fingerprint()} {split} pristine", "images": len(items),
                "patches": n}
        save_state(path, {"mu": mu, "cov": cov}, meta)
    state = load_state(path)
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    info = {"source": meta.get("source", "fitted"), "file": path.name, "sha256": file_digest(path),
            "version": int(meta.get("version", NIQE_VERSION)), "patch": int(meta.get("patch", PATCH)),
            "threshold": float(meta.get("threshold", SHARPNESS_THRESHOLD)),
            "images": int(meta.get("images", 0)), "patches": int(meta.get("patches", 0))}
    return NIQEModel(state["mu"].to(torch.float64), state["cov"].to(torch.float64), info, path)


@functools.lru_cache(maxsize=4)
def _cached_model(cache_root: str) -> NIQEModel:
    local = _local_pyiqa_params()
    return _pyiqa_model(local) if local is not None else _fitted_model()


def niqe_model() -> NIQEModel:
    """The pristine model in use: pyiqa's published parameters if on disk,
    else the fit on the embedded dataset's train pristine crops (cached)."""
    from iqabench.artifacts import cache_dir

    return _cached_model(str(cache_dir()))


def niqe_model_info() -> dict[str, Any]:
    """Which pristine model NIQE uses (for run manifests)."""
    return dict(niqe_model().info)


@torch.no_grad()
def niqe(x: torch.Tensor, model: NIQEModel | None = None, patch: int = PATCH) -> torch.Tensor:
    """NIQE of each RGB image in [0,1] (B x 3 x H x W, H, W >= 96): Tensor[B]
    on ``x``'s device, lower is more natural.  Not differentiable (the grey
    image is quantised as MATLAB reads uint8 images).  An image without a
    usable patch (a flat image: its MSCN coefficients are all 0) gets NaN."""
    model = model or niqe_model()
    feats, _ = niqe_features(x, patch)
    valid = torch.isfinite(feats).all(-1)
    mu2, cov2 = _masked_mvg(feats, valid)
    mu1 = model.mu.to(feats.device, feats.dtype)
    cov1 = model.cov.to(feats.device, feats.dtype)
    d = (mu1 - mu2).unsqueeze(-1)
    q = (d.transpose(1, 2) @ torch.linalg.pinv((cov1 + cov2) / 2) @ d).reshape(-1)
    return torch.sqrt(q.clamp_min(0)).to(x.dtype if x.dtype.is_floating_point else torch.float32)
