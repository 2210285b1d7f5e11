"""Optimized, cumulative and generative UAPs (REFERENCES.md section 1, MSU
reference code ``methods/{uap,cumulative-uap,generative-uap}/train.py``).

All three maximise the mean normalised gain (the score pushed towards
"better"; REFERENCES' ``J = 1 - s/range`` up to a constant) of the training
images plus the perturbation, clamped to [0,1], over the training batches.

Training images and the perturbation size
-----------------------------------------
The perturbation is ``size`` x ``size`` (256 in the reference).  Each
training image is first brought to a view, as ``view`` says:

* ``"resize"`` (default): the MSU reader (``methods/utils/read_dataset.py``,
  ``center_crop``) with its 256 read as ``size``: an image with a side under
  ``2 * size`` (512) is RESIZED to ``size`` x ``size`` -- OpenCV's default
  bilinear interpolation (half-pixel centres, no antialiasing; here
  ``F.interpolate(mode="bilinear", align_corners=False)``), aspect ratio not
  kept -- and any other is centre-cropped to ``size`` x ``size`` (top-left
  corner at ``(floor((h - size) / 2), floor((w - size) / 2))``).  Every view
  has the perturbation's size, so all of it trains.  At test time
  :meth:`UniversalAttack.apply` tiles the perturbation from the top-left
  corner at the test images' own resolution, as the reference's ``run_uap``
  does: training views and test images need not share a scale (the
  reference trains on COCO/VOC images mostly resized down to 256 and tests
  on full-size images).
* ``"crop"``: an image larger than ``size`` along a side is centre-cropped
  to ``size`` there; an image smaller than ``size`` is used whole and meets
  the top-left corner of the perturbation -- exactly the part that ``apply``
  tiles onto an image of that size at test time; the rest of the
  perturbation stays at its initial value.  No resampling: training sees the
  test images' scale.

Randomness comes only from the global torch RNG (the caller's
``torch.manual_seed``): the generator's initial weights, its input noise and
its dropout.  Batches are used in the order given, every epoch.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Literal

import torch
import torch.nn.functional as F

from iqabench.contracts import IQAModel, UniversalAttack, check_positive, normalised_gain
from iqabench.errors import ParameterError
from iqabench.progress import progress
from .. import bib


# ---------------------------------------------------------------- helpers ---
View = Literal["resize", "crop"]
VIEWS = ("resize", "crop")


def train_view(x: torch.Tensor, size: int, view: View = "resize") -> torch.Tensor:
    """The training view of a batch of equal-sized images (see the module docstring).

    ``"resize"``: size x size -- bilinear resize if a side is under
    ``2 * size``, else the centre crop; ``"crop"``: the centre crop of each
    side longer than ``size`` (shorter sides kept).
    """
    h, w = x.shape[-2:]
    if view == "resize" and min(h, w) < 2 * size:
        if (h, w) == (size, size):
            return x
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    th, tw = min(h, size), min(w, size)
    top, left = (h - th) // 2, (w - tw) // 2
    return x[..., top: top + th, left: left + tw]


def _check_view(attack: UniversalAttack) -> None:
    if attack.view not in VIEWS:
        raise ParameterError(f"{attack.name!r} parameter 'view' must be 'resize' or 'crop', got {attack.view!r}")


def perturbed(x: torch.Tensor, uap: torch.Tensor) -> torch.Tensor:
    """``clamp(x + uap)`` with the top-left of ``uap`` matched to ``x`` (its size <= uap's)."""
    h, w = x.shape[-2:]
    return (x + uap[..., :h, :w]).clamp(0.0, 1.0)


def mean_gain(model: IQAModel, x: torch.Tensor, uap: torch.Tensor) -> torch.Tensor:
    return normalised_gain(model, model(perturbed(x, uap))).mean()


def _reiterable(batches: Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
    """Epochs need to iterate the batches again: a one-shot iterator is
    materialised (a list, a DataLoader or a dataset view is used as is)."""
    return list(batches) if iter(batches) is batches else batches


@contextmanager
def _bar(description: str, total: int | None) -> Iterator[Callable[[], None]]:
    """One rich progress task; silent when another live display (e.g. the
    runner's) is already active, or with ``IQABENCH_PROGRESS=0``."""
    from rich.errors import LiveError

    bar = progress()
    try:
        bar.start()
    except LiveError:
        bar = progress(enabled=False)
    task = bar.add_task(description, total=total)
    try:
        yield lambda: bar.advance(task, 1)
    finally:
        bar.stop()


def _batches(batches: Iterable[torch.Tensor], epochs: int, size: int, view: View, device: str, label: str
             ) -> Iterator[torch.Tensor]:
    """Every training batch of every epoch, on ``device``, as its training view, with a progress bar."""
    batches = _reiterable(batches)
    total = epochs * len(batches) if hasattr(batches, "__len__") else None
    with _bar(label, total) as advance:
        for _ in range(epochs):
            for batch in batches:
                if batch.ndim != 4 or batch.shape[1] != 3:
                    raise ParameterError(f"{label}: training batches must be B x 3 x H x W, got {tuple(batch.shape)}")
                yield train_view(batch.to(device), size, view)
                advance()


# ------------------------------------------------------------------ UAPs ---
@dataclass
class OptimizedUAP(UniversalAttack):
    """One size x size perturbation trained with Adam on the mean score, clamped to +-clamp."""

    name = "uap"
    citation = bib.UAP
    description = "Optimized UAP: one perturbation trained with Adam to raise the mean score, clamped to +-0.1."

    size: int = 256
    init: float = 1e-4
    lr: float = 0.001
    epochs: int = 5
    clamp: float = 0.1
    view: View = "resize"  # training views: the MSU reader's resize/centre crop, or "crop" (no resampling)

    def __post_init__(self) -> None:
        check_positive(self, "size", "lr", "epochs", "clamp")
        _check_view(self)

    def fit(self, model: IQAModel, batches: Iterable[torch.Tensor], device: str = "cpu") -> torch.Tensor:
        uap = torch.full((1, 3, self.size, self.size), float(self.init), device=device)
        uap.clamp_(-self.clamp, self.clamp).requires_grad_(True)
        opt = torch.optim.Adam([uap], lr=self.lr)
        for x in _batches(batches, self.epochs, self.size, self.view, device, f"{self.name} fit"):
            with torch.enable_grad():
                (g,) = torch.autograd.grad(-mean_gain(model, x, uap), uap)
            uap.grad = g
            opt.step()
            with torch.no_grad():
                uap.clamp_(-self.clamp, self.clamp)
        return uap.detach()


@dataclass
class CumulativeUAP(UniversalAttack):
    """Accumulated one-step gradients of the batch-mean score, clamped to +-clamp."""

    name = "cumulative-uap"
    citation = bib.UAP
    description = "Cumulative UAP: sum of one-step gradients of the batch-mean score over the training set, clamped to +-0.1."

    size: int = 256
    init: float = 1e-4
    lr: float = 1.0  # the reference subtracts the raw gradient of J: step 1
    epochs: int = 5
    clamp: float = 0.1
    view: View = "resize"  # training views: the MSU reader's resize/centre crop, or "crop" (no resampling)

    def __post_init__(self) -> None:
        check_positive(self, "size", "lr", "epochs", "clamp")
        _check_view(self)

    def fit(self, model: IQAModel, batches: Iterable[torch.Tensor], device: str = "cpu") -> torch.Tensor:
        uap = torch.full((1, 3, self.size, self.size), float(self.init), device=device).clamp_(-self.clamp, self.clamp)
        for x in _batches(batches, self.epochs, self.size, self.view, device, f"{self.name} fit"):
            u = uap.requires_grad_(True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(mean_gain(model, x, u), u)
            uap = (uap.detach() + self.lr * g).clamp_(-self.clamp, self.clamp)
        return uap.detach()


@dataclass
class GenerativeUAP(UniversalAttack):
    """A U-Net maps fixed uniform noise to tanh(.) * eps; trained with Adam on the mean score."""

    name = "generative-uap"
    citation = bib.UAP
    description = "Generative UAP: a U-Net maps fixed uniform noise to tanh(.)*10/255, trained with Adam for 1 epoch."

    size: int = 256
    ngf: int = 64
    depth: int = 8
    eps: float = 10 / 255
    lr: float = 0.001
    epochs: int = 1
    view: View = "resize"  # training views: the MSU reader's resize/centre crop, or "crop" (no resampling)

    def __post_init__(self) -> None:
        check_positive(self, "size", "ngf", "depth", "eps", "lr", "epochs")
        _check_view(self)
        if self.depth < 2 or self.size % (2**self.depth):
            raise ParameterError(
                f"'generative-uap' parameter 'size' must be a multiple of 2**depth = {2 ** self.depth} "
                f"(depth >= 2), got size={self.size}, depth={self.depth}"
            )

    def fit(self, model: IQAModel, batches: Iterable[torch.Tensor], device: str = "cpu") -> torch.Tensor:
        from .generator import UnetGenerator

        net = UnetGenerator(3, 3, self.ngf, self.depth).to(device).train()
        noise = torch.rand(1, 3, self.size, self.size).to(device)  # fixed input, drawn once
        params = list(net.parameters())
        opt = torch.optim.Adam(params, lr=self.lr)
        for x in _batches(batches, self.epochs, self.size, self.view, device, f"{self.name} fit"):
            with torch.enable_grad():
                grads = torch.autograd.grad(-mean_gain(model, x, net(noise) * self.eps), params)
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()
        # the reference reads the perturbation off the network still in
        # training mode (one dropout draw, from the caller's RNG)
        with torch.no_grad():
            return (net(noise) * self.eps).detach()
