"""Training crops from images smaller than the recipe's crop.

HyperIQA's paper recipe crops 224 px; the embedded default dataset's
images are 192 px.  The trainer scales such an image up (bilinear, short
side to the crop, aspect kept) -- the evaluation path's policy
(``plugins/zoo/models.py:grid_crops``) -- instead of stopping; images at
least as large as the crop are cropped as before, so every existing trained
artifact (and its key) stays valid.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from iqabench.models.training import ImageBank
from models_for_tests import TinyData


def _bank(size: int) -> tuple[ImageBank, list[torch.Tensor]]:
    data = TinyData.make(n_train=3, n_test=1, size=size)()
    items = data.items("train")
    return ImageBank(data, items), [data.load(it) for it in items]


def test_a_small_image_is_scaled_up_to_the_crop_then_cropped():
    bank, images = _bank(24)
    size = 40
    # the oracle: the same generator draws, on the image interpolated short side -> size
    big = F.interpolate(images[1][None], size=(size, size), mode="bilinear", align_corners=False)[0]
    gen, ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    out = bank.crop(1, size, gen, hflip=False)
    top = int(torch.randint(0, 1, (1,), generator=ref))
    left = int(torch.randint(0, 1, (1,), generator=ref))
    assert out.shape == (3, size, size)
    assert (top, left) == (0, 0)
    torch.testing.assert_close(out, big, atol=1e-6, rtol=0)


def test_a_non_square_small_image_keeps_its_aspect():
    data = TinyData.make(n_train=1, n_test=1, size=24)()
    item = data.items("train")[0]
    wide = data.load(item)[:, :12, :]  # 12 x 24

    class _Wide:
        name = "wide"

        def load(self, it):
            return wide

    bank = ImageBank(_Wide(), [item])
    gen = torch.Generator().manual_seed(0)
    out = bank.crop(0, 30, gen, hflip=False)
    assert out.shape == (3, 30, 30)
    scaled = F.interpolate(wide[None], size=(30, 60), mode="bilinear", align_corners=False)[0]
    # the crop is one 30 x 30 window of the 30 x 60 scaled image
    hits = [l for l in range(31) if torch.allclose(scaled[:, :, l : l + 30], out, atol=1e-6)]
    assert hits


def test_large_images_are_cropped_exactly_as_before():
    bank, images = _bank(32)
    gen, ref = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    out = bank.crop(2, 16, gen, hflip=False)
    top = int(torch.randint(0, 17, (1,), generator=ref))
    left = int(torch.randint(0, 17, (1,), generator=ref))
    torch.testing.assert_close(out, images[2][:, top : top + 16, left : left + 16], atol=1e-6, rtol=0)


def test_hyperiqa_default_recipe_takes_a_step_on_the_default_data():
    """The headline command's first phase (issue 14): HyperIQA's paper recipe
    (224 px crops) trains on the embedded dataset's 192 px images."""
    import iqabench
    from iqabench.models.build import build_model
    from iqabench.models.training import train_model

    model = build_model("hyperiqa", {}, "random", "cpu", 0)
    recipe = model.recipe("default")
    assert recipe.crop > 192
    recipe = replace(recipe, epochs=1, batch_size=2, extra={**recipe.extra, "steps_per_epoch": 1})
    summary = train_model(model, iqabench.get_dataset("embedded"), recipe, seed=0, progress=False)
    assert summary["steps"] == 1 and torch.isfinite(torch.tensor(summary["loss_history"])).all()
