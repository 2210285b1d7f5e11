"""What the harness checks before it stores a number: images a model can
read, finite scores, and attack outputs that keep their promises.

A broken model or attack plugin must fail with a one-line error naming it
and the image, never publish a NaN or an over-budget perturbation.
"""
from __future__ import annotations

import torch

from ..contracts import AttackResult, IQADataset, IQAModel, Item
from ..errors import DatasetError, ModelError, PluginError


def load_checked(dataset: IQADataset, item: Item, model: IQAModel) -> torch.Tensor:
    """``item``'s image, a 3xHxW tensor at least as large as ``model`` accepts."""
    img = dataset.load(item)
    if img.ndim != 3 or img.shape[0] != 3:
        raise DatasetError(f"dataset {dataset.name!r}: image {item.name!r} loaded with shape {tuple(img.shape)}, expected 3xHxW")
    model.require_size(img, f"dataset {dataset.name!r}: image {item.name!r} ({item.source})")
    return img


def check_scores(model: IQAModel, s: torch.Tensor, names: list[str], what: str) -> None:
    """Refuse a NaN or infinite score, naming the first image that has one."""
    bad = ~torch.isfinite(s.reshape(-1))
    if bad.any():
        culprit = names[int(bad.nonzero()[0])]
        raise ModelError(f"model {model.name!r} returned a non-finite {what} score for image {culprit!r}")


def check_result(attack: str, x: torch.Tensor, adv: torch.Tensor, result: AttackResult) -> None:
    """A broken attack plugin must not publish numbers: same shape, finite
    pixels in [0, 1], within the bound it recorded."""
    if adv.shape != x.shape:
        raise PluginError(f"attack {attack!r} returned shape {tuple(adv.shape)} for input {tuple(x.shape)}")
    if not torch.isfinite(adv).all():
        raise PluginError(f"attack {attack!r} returned non-finite pixels")
    if adv.min() < 0 or adv.max() > 1:
        raise PluginError(f"attack {attack!r} returned pixels outside [0, 1]")
    delta = (adv - x).flatten(1).double()
    measured = {"linf": lambda: delta.abs().amax(1), "l2": lambda: delta.norm(dim=1),
                "mse": lambda: delta.pow(2).mean(1),
                "l0": lambda: (adv - x).abs().amax(1).flatten(1).gt(0).sum(1).double()}  # pixels changed
    if result.norm in measured:
        bound = result.bound.to(adv.device).reshape(-1).double()
        if (measured[result.norm]() > bound * (1 + 1e-5) + 1e-6).any():
            raise PluginError(f"attack {attack!r} exceeded its recorded {result.norm} bound")
