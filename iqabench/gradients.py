"""Input gradients of a model's quality objective, shared by every attack.

Attacks *maximise* ``normalised_gain`` (REFERENCES.md 1 minimises
``J = 1 - s/range``, which is the same up to a constant), so the orientation
of a lower-is-better model is handled here once, not by each attack.

Every gradient is checked: a NaN or infinite objective or gradient raises
:class:`~iqabench.errors.NonFiniteError` naming the images' batch positions
and the step -- the number of this gradient evaluation within the current
attack call (1-based), counted inside :func:`counting_steps` (the evasion
experiments wrap each ``perturb`` call in it).  For attacks that take one gradient per
iteration the step is the iteration.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

import torch

from .contracts import IQAModel, normalised_gain
from .errors import NonFiniteError

_STEPS: ContextVar[list[int] | None] = ContextVar("iqabench_gradient_steps", default=None)


@contextmanager
def counting_steps() -> Iterator[None]:
    """Number the gradient evaluations made inside the block from 1."""
    token = _STEPS.set([0])
    try:
        yield
    finally:
        _STEPS.reset(token)


def input_grad(objective: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``objective(x)`` (one value per image) and the gradient of its sum w.r.t. ``x``.

    The per-image values are summed before back-propagation: in eval mode
    images do not interact, so the gradient of the sum is each image's own
    gradient and one backward pass serves the whole batch.  Raises
    :class:`NonFiniteError` if any value or gradient is not finite.
    """
    return input_grad_in_parts(lambda z, rows: objective(z), x, max(len(x), 1))


def input_grad_in_parts(objective: Callable[[torch.Tensor, slice], torch.Tensor], x: torch.Tensor, part: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`input_grad` with at most ``part`` images per forward/backward pass.

    Why: an objective over many views per image (PGD's 25 random crops)
    holds every view's activations until the backward pass -- 20.7 GiB
    for 32 images x 25 crops of 192 px on the default model.  Images do not
    interact, so the gradient of each part is its images' own gradient and
    only the peak memory changes.  ``objective(z, rows)`` gets the images
    ``x[rows]`` as ``z`` (and ``rows``, to select what else belongs to
    them); the whole call is one step of :func:`counting_steps` and its
    errors name positions in ``x``.
    """
    if part < 1:
        raise ValueError(f"part must be >= 1, got {part!r}")
    counter = _STEPS.get()
    if counter is not None:
        counter[0] += 1
    values, grads = [], []
    for start in range(0, len(x), part):
        rows = slice(start, min(start + part, len(x)))
        z = x[rows].detach().requires_grad_(True)
        with torch.enable_grad():
            v = objective(z, rows)
            (g,) = torch.autograd.grad(v.sum(), z)
        values.append(v.detach())
        grads.append(g)
    value = values[0] if len(values) == 1 else torch.cat(values)
    grad = grads[0] if len(grads) == 1 else torch.cat(grads)
    bad_value = ~torch.isfinite(value.reshape(len(x), -1)).all(1)
    bad = bad_value | ~torch.isfinite(grad.flatten(1)).all(1)
    if bad.any():
        raise NonFiniteError("score" if bad_value.any() else "gradient", bad.nonzero().flatten().tolist(),
                             counter[0] if counter is not None else None, len(x))
    return value, grad


def gain_and_grad(model: IQAModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image normalised gain and its gradient w.r.t. ``x`` (see :func:`input_grad`)."""
    return input_grad(lambda z: normalised_gain(model, model(z)), x)


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: torch.Tensor | float) -> torch.Tensor:
    """Clip the perturbation to ``[-eps, eps]`` (per image when ``eps`` is a
    tensor of shape B) and the image to [0, 1]."""
    if isinstance(eps, torch.Tensor):
        eps = eps.view(-1, *([1] * (x.ndim - 1)))
    delta = torch.clamp(x_adv - x, -eps, eps)
    return (x + delta).clamp_(0.0, 1.0)
