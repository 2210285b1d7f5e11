"""Pruning defence: cut the least active channels of the last feature convolution.

Fine-pruning's observation (Liu et al. 2018, used by BAIQA, REFERENCES.md 2):
channels that stay dormant on clean images are where a backdoor can hide,
so removing them costs little clean accuracy.  The layer is the model's
:meth:`~iqabench.contracts.IQAModel.prunable_layer`; the paper sweeps rates
0-60%.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from iqabench.benign import benign_items
from iqabench.contracts import Defense, IQADataset, IQAModel
from iqabench.errors import ParameterError
from iqabench.progress import progress as progress_bar


@torch.no_grad()
def mean_activations(model: IQAModel, layer: torch.nn.Conv2d, images, device: str = "cpu") -> torch.Tensor:
    """Mean output of each channel of ``layer`` over ``images`` (eval mode, every position)."""
    total = torch.zeros(layer.out_channels, dtype=torch.float64)
    count = 0

    def hook(_module, _inputs, out):
        nonlocal count
        total.add_(out.detach().double().sum(dim=(0, 2, 3)).cpu())
        count += out.shape[0] * out.shape[2] * out.shape[3]

    handle = layer.register_forward_hook(hook)
    try:
        model.to(device).eval()
        for x in images:
            model(x.unsqueeze(0).to(device) if x.ndim == 3 else x.to(device))
    finally:
        handle.remove()
    if not count:
        raise ParameterError(f"model {model.name!r}: no benign images reached the pruned layer")
    return total / count


def channels_to_prune(activation: torch.Tensor, rate: float) -> list[int]:
    """The ``round(rate * C)`` channels with the lowest mean activation (ties: lower index)."""
    k = round(rate * activation.numel())
    order = sorted(range(activation.numel()), key=lambda c: (float(activation[c]), c))
    return sorted(order[:k])


@torch.no_grad()
def batchnorm_after(model: IQAModel, layer: torch.nn.Conv2d, x: torch.Tensor) -> "torch.nn.BatchNorm2d | None":
    """The BatchNorm2d that directly consumes ``layer``'s output (found by tracing one forward), or None."""
    seen: dict[str, torch.Tensor] = {}
    found: list[torch.nn.Module] = []

    def grab(_m, _i, out):
        seen["out"] = out

    def check(m, inputs, _o):
        if "out" in seen and inputs and inputs[0] is seen["out"]:
            found.append(m)

    handles = [layer.register_forward_hook(grab)]
    handles += [m.register_forward_hook(check) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    try:
        model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None


@torch.no_grad()
def zero_channels(layer: torch.nn.Conv2d, channels: list[int], norm: "torch.nn.BatchNorm2d | None" = None) -> None:
    """Remove output channels by zeroing their filters and biases: their output is exactly 0.

    A batch norm right after the layer would turn that 0 into a constant
    offset, so its scale and shift are zeroed for the same channels: the
    channel is then exactly 0 after the normalisation too.  Zeroing (rather
    than rebuilding narrower layers) keeps every shape and state-dict key,
    so the pruned model saves and loads as a plain weights file of the same
    architecture.
    """
    if channels:
        layer.weight[channels] = 0
        if layer.bias is not None:
            layer.bias[channels] = 0
        if norm is not None and norm.affine:
            norm.weight[channels] = 0
            norm.bias[channels] = 0


@dataclass
class Prune(Defense):
    """Zero the ``rate`` fraction of channels of ``prunable_layer()`` with the lowest mean
    activation on ``fraction`` of the benign training split."""

    name = "prune"
    description = "Prune the least active channels of the last feature conv on benign data (fine-pruning, BAIQA)"
    kind = "post-training"

    rate: float = 0.2
    fraction: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.rate < 1:
            raise ParameterError(f"'prune' parameter 'rate' must be in [0, 1), got {self.rate!r}")
        if not 0 < self.fraction <= 1:
            raise ParameterError(f"'prune' parameter 'fraction' must be in (0, 1], got {self.fraction!r}")

    def apply(self, model: IQAModel, dataset: IQADataset, seed: int, device: str = "cpu",
              progress: bool = True) -> dict:
        items = benign_items(dataset, self.fraction, seed)
        layer = model.prunable_layer()
        with progress_bar(progress) as bar:
            task = bar.add_task(f"prune {model.name}: activations", total=len(items))

            def images():
                for item in items:
                    yield dataset.load(item)
                    bar.advance(task)

            activation = mean_activations(model, layer, images(), device)
        pruned = channels_to_prune(activation, self.rate)
        norm = batchnorm_after(model, layer, dataset.load(items[0]).unsqueeze(0).to(device))
        zero_channels(layer, pruned, norm)
        names = {m: n for n, m in model.named_modules()}
        return {"layer": names.get(layer, "?"), "batchnorm": names.get(norm) if norm is not None else None,
                "channels": layer.out_channels, "pruned": pruned, "benign_images": len(items)}
