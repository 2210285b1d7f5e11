"""A tiny trainable model and a tiny labelled dataset for backdoor tests."""
from __future__ import annotations

import torch
from torch import nn

from iqabench.contracts import IQADataset, IQAModel, Item, TrainRecipe
from iqabench.hookspecs import hookimpl


class TinyCNN(IQAModel):
    """Two 3x3 convolutions, mean and std pooling, one linear layer; trains in a second."""

    name = "test-backdoor-cnn"
    lower_better = False
    min_size = 16

    def __init__(self, width: int = 8):
        super().__init__()
        self.width = width
        self.conv = nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU())
        self.head = nn.Linear(2 * width, 1)

    def forward(self, x):
        f = self.conv(x)
        return 50.0 + 25.0 * self.head(torch.cat([f.mean((2, 3)), f.std((2, 3))], 1)).squeeze(1)

    def recipe(self, profile: str = "default") -> TrainRecipe:
        return TrainRecipe(epochs=2, lr=3e-3, batch_size=16, crop=32, patches_per_image=1, loss="l1")


class TinyNoise(IQADataset):
    """48x48 smooth random images with white noise; MOS falls with the noise level."""

    name = "test-tiny-noise"
    mos_range = (0.0, 100.0)
    SIZES = {"train": 40, "test": 12}

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._items = {}
        self._images = []
        g = torch.Generator().manual_seed(seed)
        for split, n in self.SIZES.items():
            items = []
            for i in range(n):
                base = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=48, mode="bilinear")[0]
                level = float(torch.rand(1, generator=g)) * 0.3
                img = (base + level * torch.randn(3, 48, 48, generator=g)).clamp(0, 1)
                self._images.append(img)
                items.append(Item(f"{split}{i:03d}", 100.0 * (1 - level / 0.3), len(self._images) - 1))
            self._items[split] = items

    def splits(self):
        return list(self.SIZES)

    def items(self, split):
        return self._items[split]

    def load(self, item):
        return self._images[item.source].clone()

    def fingerprint(self):
        return f"{self.name}-{self.seed}"


class TinyPlugin:
    @hookimpl
    def register_models(self, register):
        register(TinyCNN)

    @hookimpl
    def register_datasets(self, register):
        register(TinyNoise)
