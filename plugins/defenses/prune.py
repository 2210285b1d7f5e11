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
def zero_channels(layer: torch.nn.Conv2d, channels: list[int]) -> None:
    """Remove output channels by zeroing their filters and biases: their output is exactly 0.

    Zeroing (rather than rebuilding a narrower layer) keeps every shape and
    state-dict key, so the pruned model saves and loads as a plain weights
    file of the same architecture.
    """
    if channels:
        layer.weight[channels] = 0
        if layer.bias is not None:
            layer.bias[channels] = 0


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
        zero_channels(layer, pruned)
        layer_name = next((n for n, m in model.named_modules() if m is layer), "?")
        return {"layer": layer_name, "channels": layer.out_channels, "pruned": pruned, "benign_images": len(items)}
