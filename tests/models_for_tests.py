"""Tiny models with closed-form behaviour, used as independent truth."""
from __future__ import annotations

import torch

from iqabench.contracts import IQAModel


class LinearScore(IQAModel):
    """s(x) = sum(w * x): the FGSM step is exactly eps * sign(w)."""

    name = "test-linear"
    lower_better = False
    min_size = 1

    def __init__(self, seed: int = 0, size: int = 8):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(torch.randn(1, 3, size, size, generator=g))
        self.score_range = (0.0, 1.0)

    def forward(self, x):
        return (self.w * x).flatten(1).sum(1)


class LowerBetterLinear(LinearScore):
    """The same score, but lower means better: attacks must push it down."""

    name = "test-linear-lower"
    lower_better = True


class NaNModel(LinearScore):
    """Returns NaN for every image: the runner must refuse to store it."""

    name = "test-nan"

    def forward(self, x):
        return x.flatten(1).mean(1) * float("nan")


class MeanLuma(IQAModel):
    """Mean luma x 100 on a fixed 0-100 range: any image size, no weights."""

    name = "test-mean-luma"
    lower_better = False
    min_size = 8

    def __init__(self):
        super().__init__()
        self.score_range = (0.0, 100.0)

    def forward(self, x):
        return 100 * (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean((1, 2))


class TinyConvIQA(IQAModel):
    """A trainable CNN small enough to train in a second: 3x3 conv (8 filters),
    ReLU, global mean pool, dropout, linear head around a 0-100 scale."""

    name = "test-tiny-cnn"
    lower_better = False
    min_size = 16

    def __init__(self, filters: int = 8, dropout: float = 0.2):
        super().__init__()
        from iqabench.contracts import TrainRecipe

        self.filters, self.dropout = filters, dropout
        self.conv = torch.nn.Conv2d(3, filters, 3)
        self.drop = torch.nn.Dropout(dropout)
        self.fc = torch.nn.Linear(filters, 1)
        self._recipe = TrainRecipe(epochs=2, lr=1e-2, batch_size=4, crop=24, patches_per_image=1, loss="l1")

    def forward(self, x):
        self.check_input(x)
        h = torch.relu(self.conv(x)).mean((2, 3))
        return 50 + 25 * self.fc(self.drop(h)).squeeze(1)

    def recipe(self, profile: str = "default"):
        from dataclasses import replace

        return replace(self._recipe)


class TinyData:
    """Factory of tiny in-memory datasets (32x32 images, MOS = 100 x mean luma)."""

    @staticmethod
    def make(n_train: int = 12, n_test: int = 8, seed: int = 0, size: int = 32):
        from iqabench.contracts import IQADataset, Item

        g = torch.Generator().manual_seed(seed)
        images = torch.rand(n_train + n_test, 3, size, size, generator=g)
        images = images * torch.rand(n_train + n_test, 1, 1, 1, generator=g)  # varied brightness
        mos = 100 * (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]).mean((1, 2))

        class _Tiny(IQADataset):
            name = "test-tiny-data"

            def __init__(self):
                self.loaded: list[str] = []
                self._items = {
                    "train": [Item(f"tr{i}", float(mos[i]), i) for i in range(n_train)],
                    "test": [Item(f"te{i}", float(mos[n_train + i]), n_train + i) for i in range(n_test)],
                }

            def splits(self):
                return list(self._items)

            def items(self, split):
                return self._items[split]

            def load(self, item):
                self.loaded.append(item.name)
                return images[item.source].clone()

            def fingerprint(self):
                return f"test-tiny-data-{seed}-{n_train}-{n_test}-{size}"

        return _Tiny


class Registers:
    """A plugin object registering the given models and datasets:
    ``plugin(Registers(models=[M], datasets=[D]), "name")`` in a CLI test."""

    def __init__(self, models=(), datasets=()):
        self.models, self.datasets = list(models), list(datasets)

    from iqabench.hookspecs import hookimpl as _hookimpl

    @_hookimpl
    def register_models(self, register):
        for model in self.models:
            register(model)

    @_hookimpl
    def register_datasets(self, register):
        for dataset in self.datasets:
            register(dataset)
