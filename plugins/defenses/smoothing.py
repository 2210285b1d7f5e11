"""Median smoothing for regression: a certified IQA defence (Chiang et al., NeurIPS 2020).

The smoothed score of an image ``x`` is the median of the model's scores of
``n`` noisy copies ``clamp(x + sigma * eps, 0, 1)``, ``eps ~ N(0, I)``.  Write
``h_p(x)`` for the p-th percentile of the score under that noise.  For any
perturbation ``||delta||_2 <= r``, Gaussian smoothing bounds the median at the
perturbed image by percentiles at the clean one (Chiang et al., Theorem 1)::

    h_{p-}(x) <= h_{1/2}(x + delta) <= h_{p+}(x),   p+- = Phi(+-r / sigma).

From the sorted samples ``y_(1) <= ... <= y_(n)`` the certified upper bound
is ``y_(k)`` with the smallest ``k`` such that ``BinomCDF(k - 1; n, p+) >=
1 - alpha`` and the lower bound ``y_(k)`` with the largest ``k`` such that
``BinomCDF(k - 1; n, p-) <= alpha``: each holds with probability at least
``1 - alpha`` over the draws.  When no ``k`` qualifies (``n`` too small for
``r``), the bound is infinite.

Defaults are those of the certified-IQA release
(``katiashh/certified-iqa-defenses``, ``ccrf/calc_nms_*.py``): sigma 0.12,
n 1000, confidence 0.999 (``alpha`` 0.001), noisy images clamped to [0, 1],
radius 0.05; ``radii`` adds the larger radii a width-vs-radius curve needs.
The release indexes its order statistics 0-based into a list sorted in
DESCENDING order, so its "lower" and "upper" columns are the order statistics
``n - q_l`` and ``n - q_u`` (1-based) -- the two bounds swapped and shifted
by one; here they are the theorem's.  Clamping keeps the certificate valid
(the smoothed function is ``f(clamp(.))``, any function of the noisy input).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy import stats

from iqabench.contracts import InputDefense, IQAModel, check_positive
from iqabench.errors import ParameterError

from .purifiers import gaussian_noise
from .. import bib


def order_statistics(n: int, sigma: float, radius: float, alpha: float) -> tuple[int | None, int | None]:
    """1-based ranks ``(k_lower, k_upper)`` of the certified bounds at ``radius``; None where none qualifies."""
    p_up, p_low = stats.norm.cdf(radius / sigma), stats.norm.cdf(-radius / sigma)
    ks = torch.arange(1, n + 1).numpy()
    upper = ks[stats.binom.cdf(ks - 1, n, p_up) >= 1 - alpha]
    lower = ks[stats.binom.cdf(ks - 1, n, p_low) <= alpha]
    return (int(lower.max()) if lower.size else None), (int(upper.min()) if upper.size else None)


@dataclass
class MedianSmoothing(InputDefense):
    """Median of ``n`` noisy scores (Gaussian ``sigma``), with certified score intervals at ``radii`` (L2).

    ``purify`` is one noisy draw: the adaptive attacker (EOT) differentiates the
    mean score over ``eot_samples`` draws, the usual attack on a smoothed model."""

    name = "median-smoothing"
    citation = (bib.MEDIAN_SMOOTHING, bib.GUARDIANS)
    description = "Certified: median of n=1000 noisy scores, sigma 0.12, order-statistic bounds (Chiang et al. 2020; certified-IQA release)"
    random = True
    certified = True

    sigma: float = 0.12
    n: int = 1000
    alpha: float = 0.001
    radii: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
    clamp: bool = True
    chunk: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "sigma", "n", "chunk")
        if not 0 < self.alpha < 0.5:
            raise ParameterError(f"'median-smoothing' parameter 'alpha' must be in (0, 0.5), got {self.alpha!r}")
        if not self.radii or any(not (r > 0 and math.isfinite(r)) for r in self.radii):
            raise ParameterError(f"'median-smoothing' parameter 'radii' must be finite numbers > 0, got {self.radii!r}")
        self.radii = tuple(float(r) for r in self.radii)

    def purify(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_noise(x, self.sigma, self.clamp)

    def samples(self, model: IQAModel, x: torch.Tensor) -> torch.Tensor:
        """B x n scores of noisy copies, ``chunk`` copies of each image per forward."""
        out = []
        for start in range(0, self.n, self.chunk):
            k = min(self.chunk, self.n - start)
            batch = self.purify(x.repeat_interleave(k, dim=0))
            out.append(model(batch).reshape(len(x), k))
        return torch.cat(out, dim=1)

    def defend(self, model: IQAModel, x: torch.Tensor) -> torch.Tensor:
        return self.samples(model, x).median(dim=1).values

    def certify(self, model: IQAModel, x: torch.Tensor) -> dict[float, tuple[torch.Tensor, torch.Tensor]]:
        ordered = self.samples(model, x).sort(dim=1).values
        inf = torch.full((len(x),), math.inf, dtype=ordered.dtype, device=ordered.device)
        out = {}
        for r in self.radii:
            k_low, k_up = order_statistics(self.n, self.sigma, r, self.alpha)
            out[r] = (ordered[:, k_low - 1] if k_low else -inf, ordered[:, k_up - 1] if k_up else inf)
        return out
