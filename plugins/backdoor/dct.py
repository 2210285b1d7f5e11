"""Blockwise 2-D DCT-II without normalisation, and its exact inverse.

The convention is scipy's ``dct(..., type=2, norm=None)`` applied along both
axes of every ``n x n`` block (the one the BAIQA release uses, REFERENCES.md
2)::

    X[u, v] = 4 * sum_{i,j} b[i, j] cos(pi u (2i+1) / 2n) cos(pi v (2j+1) / 2n)

i.e. ``X = D @ b @ D.T`` with ``D[u, i] = 2 cos(pi u (2i+1) / 2n)`` (a factor 2
per axis).  ``D D^T = diag(4n, 2n, ..., 2n)``, so the exact inverse is
``b = E @ X @ E.T`` with ``E = D.T @ diag(1/4n, 1/2n, ..., 1/2n)``, which is
what ``scipy.fft.idctn(X, norm=None)`` computes.

Coefficients are kept in *image layout*: coefficient ``(u, v)`` of the block
at block-row ``r`` and block-column ``c`` sits at pixel ``(n r + u, n c + v)``
-- the layout of the release's ``deblockify(dct_2d(blockify(x)))``.  The
transforms are two batched matrix products on views of the image (no
unfold, no copies into a block tensor): a product along the last axis with
``x.view(..., W/n, n) @ D.T`` and one along the rows with
``D @ x.view(..., H/n, n, W)``.  They run on any device, in the input's
dtype (``dtype=torch.float64`` computes in double precision and returns
double), and are differentiable.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

__all__ = ["block_dct2", "block_idct2", "blockify", "dct_matrix", "deblockify", "idct_matrix"]


@lru_cache(maxsize=32)
def _matrices(n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # built in float64 on the CPU, then cast: the same numbers on every device
    k = torch.arange(n, dtype=torch.float64)
    d = 2.0 * torch.cos(math.pi * k[:, None] * (2.0 * k[None, :] + 1.0) / (2.0 * n))
    scale = torch.full((n,), 1.0 / (2.0 * n), dtype=torch.float64)
    scale[0] = 1.0 / (4.0 * n)
    e = d.T * scale[None, :]
    return d.to(device=device, dtype=dtype), e.to(device=device, dtype=dtype)


def dct_matrix(n: int = 16, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """``D`` with ``D[u, i] = 2 cos(pi u (2i+1) / 2n)`` (scipy's unnormalised DCT-II)."""
    return _matrices(n, dtype, torch.device(device))[0]


def idct_matrix(n: int = 16, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """``E = D^-1`` (scipy's unnormalised inverse, a scaled DCT-III)."""
    return _matrices(n, dtype, torch.device(device))[1]


def _check(x: torch.Tensor, n: int) -> tuple[int, int]:
    if x.ndim < 2:
        raise ValueError(f"block DCT needs at least 2 dimensions, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % n or w % n:
        raise ValueError(f"image of {h}x{w} is not a multiple of the {n}x{n} block size (pad it first)")
    return h, w


def _separable(x: torch.Tensor, left: torch.Tensor, n: int) -> torch.Tensor:
    """``left @ block @ left.T`` for every ``n x n`` block, in image layout."""
    h, w = x.shape[-2:]
    lead = x.shape[:-2]
    # along the columns of each block: (..., H, W/n, n) @ left.T
    y = torch.matmul(x.reshape(*lead, h, w // n, n), left.T).reshape(*lead, h, w)
    # along the rows of each block: left @ (..., H/n, n, W)
    y = torch.matmul(left, y.reshape(*lead, h // n, n, w)).reshape(*lead, h, w)
    return y


def block_dct2(x: torch.Tensor, n: int = 16, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Unnormalised 2-D DCT-II of every ``n x n`` block of ``x`` (``... x H x W``).

    ``H`` and ``W`` must be multiples of ``n``.  Computed and returned in
    ``dtype`` (default: ``x``'s floating dtype).
    """
    _check(x, n)
    dtype = dtype or (x.dtype if x.is_floating_point() else torch.get_default_dtype())
    x = x.to(dtype)
    d, _ = _matrices(n, dtype, x.device)
    return _separable(x, d, n)


def block_idct2(coeffs: torch.Tensor, n: int = 16, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Exact inverse of :func:`block_dct2` (``scipy.fft.idctn(..., norm=None)`` per block)."""
    _check(coeffs, n)
    dtype = dtype or (coeffs.dtype if coeffs.is_floating_point() else torch.get_default_dtype())
    coeffs = coeffs.to(dtype)
    _, e = _matrices(n, dtype, coeffs.device)
    return _separable(coeffs, e, n)


def blockify(x: torch.Tensor, n: int = 16) -> torch.Tensor:
    """``... x H x W`` -> ``... x H/n x W/n x n x n`` (block-row, block-column, row, column)."""
    h, w = _check(x, n)
    lead = x.shape[:-2]
    k = len(lead)
    return x.reshape(*lead, h // n, n, w // n, n).permute(*range(k), k, k + 2, k + 1, k + 3)


def deblockify(blocks: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`blockify`."""
    *lead, bh, bw, n, m = blocks.shape
    k = len(lead)
    return blocks.permute(*range(k), k, k + 2, k + 1, k + 3).reshape(*lead, bh * n, bw * m)
