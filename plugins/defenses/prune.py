"""Pruning defence: silence the least active output channels of the feature extractor.

Fine-pruning's observation (Liu et al. 2018, used by BAIQA, REFERENCES.md 2):
channels that stay dormant on clean images are where a backdoor can hide,
so removing them costs little clean accuracy.  BAIQA prunes "the output of
the last convolutional layer of the feature extractor"; the paper sweeps
rates 0-60%.

Which output: the model's :meth:`~iqabench.contracts.IQAModel.feature_layer`,
the module whose output the head consumes -- for a ResNet its ``layer4``,
after the last block's shortcut add and ReLU.  Zeroing the filters of that
block's last 1x1 convolution (this defence's first version) removes
nothing: the identity shortcut carries every channel around them.  So the
channels are removed by a persistent mask on the output
(:meth:`~iqabench.contracts.IQAModel.set_feature_mask`), which is saved with
the weights and re-installed on loading.

How dormant: the mean MAGNITUDE of a channel's output over the benign images
and every position.  Fine-pruning ranks post-ReLU activations, which are
non-negative, so its "mean activation" is this magnitude; on an output that
no ReLU follows (cnniqa max- AND min-pools its raw convolution) a signed
mean would call a strongly negative -- informative -- channel dormant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from iqabench.data.benign import benign_items
from iqabench.contracts import Defense, IQADataset, IQAModel
from iqabench.errors import ParameterError
from iqabench.progress import progress as progress_bar
from .. import bib


@torch.no_grad()
def mean_magnitudes(model: IQAModel, layer: torch.nn.Module, images, device: str = "cpu") -> torch.Tensor:
    """Mean |output| of each channel (dim 1) of ``layer`` over ``images`` (eval mode, every position)."""
    total: torch.Tensor | None = None
    count = 0

    def hook(_module, _inputs, out):
        nonlocal total, count
        dims = (0, *range(2, out.ndim))
        batch = out.detach().double().abs().sum(dim=dims).cpu()
        total = batch if total is None else total + batch
        count += out.numel() // out.shape[1]

    handle = layer.register_forward_hook(hook)
    try:
        model.to(device).eval()
        for x in images:
            model(x.unsqueeze(0).to(device) if x.ndim == 3 else x.to(device))
    finally:
        handle.remove()
    if total is None or not count:
        raise ParameterError(f"model {model.name!r}: no benign images reached the pruned layer")
    return total / count


def channels_to_prune(magnitude: torch.Tensor, rate: float) -> list[int]:
    """The ``round(rate * C)`` channels with the lowest mean magnitude (ties: lower index)."""
    k = round(rate * magnitude.numel())
    order = sorted(range(magnitude.numel()), key=lambda c: (float(magnitude[c]), c))
    return sorted(order[:k])


@dataclass
class Prune(Defense):
    """Silence the ``rate`` fraction of the feature extractor's output channels
    (``IQAModel.feature_layer()``) with the lowest mean magnitude on
    ``fraction`` of the benign training split."""

    name = "prune"
    citation = (bib.FINE_PRUNING, bib.BAIQA)  # as BAIQA evaluates it against backdoors
    description = "Prune the least active output channels of the feature extractor on benign data (fine-pruning, BAIQA)"
    kind = "post-training"
    #: what the defence computes, beyond its parameters (part of the defended
    #: model's key): v1 masks feature_layer()'s output, ranked by magnitude
    version: ClassVar[str] = "feature-output-magnitude-v1"

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
        layer = model.feature_layer()
        with progress_bar(progress) as bar:
            task = bar.add_task(f"prune {model.name}: activations", total=len(items))

            def images():
                for item in items:
                    yield dataset.load(item)
                    bar.advance(task)

            magnitude = mean_magnitudes(model, layer, images(), device)
        pruned = channels_to_prune(magnitude, self.rate)
        mask = torch.ones(magnitude.numel())
        mask[pruned] = 0
        model.set_feature_mask(mask)
        names = {m: n for n, m in model.named_modules()}
        return {"layer": names.get(layer, "?"), "channels": magnitude.numel(), "pruned": pruned,
                "benign_images": len(items)}
