"""The classical opinion-unaware / SVR models: NIQE and BRISQUE (lower is better).

Neither has network weights; what they learn from data is small and kept as
buffers, so the zoo treats it exactly like weights (``--weights``, the
manifest's weights field, safetensors):

* NIQE: the pristine multivariate Gaussian ``mu`` (36) and ``cov`` (36x36).
  The features, the pristine fit and the lookup of the published parameters
  are those of :mod:`iqabench_plugins.adversarial.niqe` (AMI-FGSM's NIQE);
  only the grey conversion differs: MATLAB's uint8 rounding is replaced by a
  straight-through rounding (the value is rounded, the gradient is the
  identity, as pyiqa's ``diff_round``), so attacks get a gradient.  Blocks
  whose features are undefined (no negative or no positive MSCN product) are
  dropped before the differentiable pass, so their 0/0 never reaches the
  backward pass.
* BRISQUE: pyiqa's features (``brisque_arch.brisque``, version "original",
  differentiable) and an RBF SVR ``score = K(f, sv) @ sv_coef - rho``
  with ``sv`` (N x 36), ``sv_coef`` (N), ``rho`` and ``gamma``.  The
  published SVR (trained on LIVE) is pyiqa's download
  ``brisque_svm_weights.pth``; offline and not cached, there is none: see
  :mod:`iqabench_plugins.zoo.models`.
"""
from __future__ import annotations

import torch
from torch import nn

NIQE_FEATURES = 36
BRISQUE_FEATURES = 36
#: the published BRISQUE SVR's constants (pyiqa, version "original")
BRISQUE_GAMMA, BRISQUE_RHO = 0.05, -153.591
#: support vectors of a random-init BRISQUE (the published SVR has 774)
RANDOM_SUPPORT_VECTORS = 64


def _st_round(x: torch.Tensor) -> torch.Tensor:
    """Rounded values, identity gradient."""
    return x + (torch.round(x) - x).detach()


def _niqe():
    from iqabench_plugins.adversarial import niqe

    return niqe


class NIQECore(nn.Module):
    """Differentiable NIQE against the pristine MVG held in the buffers."""

    def __init__(self) -> None:
        super().__init__()
        # random init: a well-conditioned but meaningless pristine model
        self.register_buffer("mu", torch.randn(NIQE_FEATURES, dtype=torch.float64))
        self.register_buffer("cov", torch.eye(NIQE_FEATURES, dtype=torch.float64))

    def gray255(self, x: torch.Tensor) -> torch.Tensor:
        g = _niqe()._GRAY
        q = _st_round(x.clamp(0, 1) * 255.0)
        return _st_round(g[0] * q[:, 0:1] + g[1] * q[:, 1:2] + g[2] * q[:, 2:3])

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-patch features B x K x 36 (zero where undefined) and their mask."""
        N = _niqe()
        patch = N.PATCH
        y = self.gray255(x.to(torch.float64))
        h, w = y.shape[-2:]
        y = y[..., : h // patch * patch, : w // patch * patch]
        b = y.shape[0]
        feats, masks = [], []
        for scale in (1, 2):
            p = patch // scale
            coeffs, _ = N.mscn(y)
            blocks = N._blocks(coeffs, p)
            k = blocks.shape[1]
            flat = blocks.reshape(b * k, p, p)
            with torch.no_grad():
                ok = torch.isfinite(N.patch_features(flat)).all(1)
            f = torch.zeros(b * k, NIQE_FEATURES // 2, dtype=y.dtype, device=y.device)
            if ok.any():
                f = f.index_put((ok.nonzero().squeeze(1),), N.patch_features(flat[ok]))
            feats.append(f.reshape(b, k, -1))
            masks.append(ok.reshape(b, k))
            if scale == 1:
                y = N.imresize_half(y)
        return torch.cat(feats, dim=-1), masks[0] & masks[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N = _niqe()
        feats, valid = self.features(x)
        mu2, cov2 = N._masked_mvg(feats, valid)
        d = (self.mu.to(feats) - mu2).unsqueeze(-1)
        q = (d.transpose(1, 2) @ torch.linalg.pinv((self.cov.to(feats) + cov2) / 2) @ d).reshape(-1)
        return torch.sqrt(q.clamp_min(1e-12)).to(x.dtype)


class BRISQUECore(nn.Module):
    """pyiqa's BRISQUE features + an RBF SVR held in the buffers."""

    def __init__(self, support_vectors: int = RANDOM_SUPPORT_VECTORS) -> None:
        super().__init__()
        # random init: support vectors in the scaled feature box [-1, 1]^36
        self.register_buffer("sv", torch.rand(support_vectors, BRISQUE_FEATURES) * 2 - 1)
        self.register_buffer("sv_coef", torch.randn(support_vectors))
        self.register_buffer("rho", torch.tensor(0.0))
        self.register_buffer("gamma", torch.tensor(BRISQUE_GAMMA))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from .offline import import_pyiqa_module

        mod = import_pyiqa_module("pyiqa.archs.brisque_arch")
        return mod.brisque(x, sv_coef=self.sv_coef, sv=self.sv, gamma=float(self.gamma), rho=float(self.rho),
                           version="original").reshape(-1)


def convert_niqe_mat(path) -> dict[str, torch.Tensor]:
    """pyiqa's / the authors' ``niqe_modelparameters.mat`` as tensors."""
    import scipy.io

    mat = scipy.io.loadmat(str(path))
    return {"mu": torch.as_tensor(mat["mu_prisparam"], dtype=torch.float64).reshape(-1),
            "cov": torch.as_tensor(mat["cov_prisparam"], dtype=torch.float64)}


def convert_brisque_pth(path) -> dict[str, torch.Tensor]:
    """pyiqa's ``brisque_svm_weights.pth`` (a tuple ``(sv_coef, sv)``), read
    with ``weights_only=True``, plus the published ``rho`` and ``gamma``."""
    from iqabench.errors import WeightsError

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
        sv_coef, sv = obj
    except Exception as exc:
        raise WeightsError(f"{path}: not a BRISQUE SVR file (sv_coef, sv) loadable with weights_only=True ({exc})") from None
    return {"sv": torch.as_tensor(sv, dtype=torch.float32), "sv_coef": torch.as_tensor(sv_coef, dtype=torch.float32).reshape(-1),
            "rho": torch.tensor(BRISQUE_RHO), "gamma": torch.tensor(BRISQUE_GAMMA)}
