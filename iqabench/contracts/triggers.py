"""The trigger contract: a backdoor trigger applied at a strength alpha."""
from __future__ import annotations

from typing import ClassVar

import torch


class Trigger:
    """A backdoor trigger: ``apply(x, alpha) -> x_triggered``.

    ``x`` is a batch of RGB images, ``B x 3 x H x W`` in [0, 1]; ``alpha`` the
    trigger strength, a float for the whole batch or a ``Tensor[B]`` with one
    strength per image (P-BAIQA poisons the images of one batch with
    different strengths).  ``alpha = 1`` is the trigger at the strength its
    parameters name (REFERENCES.md 2); ``alpha`` scales it linearly and its
    sign is meaningful (a negative alpha asks for a score shift downwards).
    The result has the shape, dtype and device of ``x`` and is clamped to
    [0, 1]; ``clamp=False`` returns it before that clamp (PSNR figures of the
    BAIQA paper are of the unclamped image).

    Parameters are dataclass fields of the subclass with defaults from
    REFERENCES.md.  ``differentiable`` says whether the output is
    differentiable with respect to ``x`` (a trigger that quantises its input,
    as the DCT triggers do, is not: its gradient w.r.t. ``x`` is zero).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    differentiable: ClassVar[bool] = False

    def apply(self, x: torch.Tensor, alpha: "float | torch.Tensor" = 1.0, clamp: bool = True) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, alpha: "float | torch.Tensor" = 1.0, clamp: bool = True) -> torch.Tensor:
        return self.apply(x, alpha, clamp=clamp)

    def check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"trigger {self.name!r} expects float B x 3 x H x W RGB images, got {shape}")

    @staticmethod
    def alphas(alpha: "float | torch.Tensor", x: torch.Tensor, dtype: "torch.dtype | None" = None) -> torch.Tensor:
        """``alpha`` as a ``Tensor[B]`` on ``x``'s device (a scalar is broadcast).

        Gradients w.r.t. a tensor ``alpha`` are kept.
        """
        dtype = dtype or x.dtype
        b = x.shape[0]
        a = torch.as_tensor(alpha, dtype=dtype, device=x.device)
        if a.ndim == 0:
            return a.expand(b)
        a = a.reshape(-1)
        if a.shape[0] != b:
            raise ValueError(f"alpha has {a.shape[0]} values for a batch of {b} images")
        return a

