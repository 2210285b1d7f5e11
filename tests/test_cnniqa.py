"""The default CNNIQA model: shapes, gradients, determinism, shipped weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from iqabench.artifacts import load_state
from iqabench.errors import ModelError
from iqabench_plugins.datasets import embedded as E
from iqabench_plugins.models.cnniqa import CNNIQA, WEIGHTS_FILE

#: The project's target for the default model on the embedded test split
#: (an untrained network scores ~0); the card's figure is also reproduced
#: independently from freshly generated test images.
LEARNED_FLOOR = 0.85


@pytest.fixture(scope="module")
def model() -> CNNIQA:
    torch.manual_seed(0)
    return CNNIQA().eval()


def test_one_score_per_image(model):
    x = torch.rand(3, 3, 64, 80)
    assert model(x).shape == (3,)


def test_gradient_wrt_input_is_finite_and_nonzero(model):
    x = torch.rand(2, 3, 48, 48, requires_grad=True)
    model(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    # a flat image (zero local variance) must not produce NaN gradients either
    flat = torch.full((1, 3, 40, 40), 0.5, requires_grad=True)
    model(flat).sum().backward()
    assert torch.isfinite(flat.grad).all()


def test_eval_mode_is_deterministic(model):
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (100, 64), (61, 200)])
def test_any_size_from_min_size(model, size):
    assert model.min_size == 32
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.shape == (1,) and torch.isfinite(out).all()


def test_too_small_or_not_rgb_is_refused(model):
    with pytest.raises(ModelError, match="at least"):
        model(torch.rand(1, 3, 31, 64))
    with pytest.raises(ModelError, match="RGB"):
        model(torch.rand(1, 1, 64, 64))


def test_recipes():
    m = CNNIQA()
    default, quick = m.recipe("default"), m.recipe("quick")
    assert quick.epochs < default.epochs
    with pytest.raises(ModelError, match="no recipe"):
        m.recipe("paper")


def test_registered_through_the_hook():
    from iqabench_plugins.models import register_models

    found = []
    register_models(register=found.append)
    assert found == [CNNIQA] and CNNIQA.name == "cnniqa" and not CNNIQA.lower_better


# ------------------------------------------------------- shipped weights ---
def _card() -> dict:
    return json.loads(WEIGHTS_FILE.with_name(WEIGHTS_FILE.stem + ".card.json").read_text())


@pytest.fixture(scope="module")
def shipped() -> CNNIQA:
    assert CNNIQA().pretrained_weights() == WEIGHTS_FILE, "the default weights are not shipped"
    m = CNNIQA()
    m.load_weights(load_state(WEIGHTS_FILE))
    return m.eval()


def test_shipped_weights_and_card(shipped):
    card = _card()
    assert WEIGHTS_FILE.stat().st_size < 5_000_000
    assert card["model"] == "cnniqa" and card["dataset"] == "embedded"
    assert card["test"]["srocc"] >= LEARNED_FLOOR
    low, high = card["score_range"]
    assert low < high


def test_shipped_weights_reproduce_the_card_on_the_test_split(shipped):
    """Independent re-evaluation: only the test photographs are generated
    (generation is per photograph, so these are exactly the test items)."""
    test_ids = tuple(p.id for p in E.PHOTOS if p.split == E.TEST and p.locate() is not None)
    data = E.generate(E.EmbeddedConfig(photos=test_ids))
    assert set(data.splits.tolist()) == {E.TEST}
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        pred = torch.cat([shipped(chunk) for chunk in x.split(64)]).numpy()
    srocc = spearmanr(pred, data.mos).statistic
    assert srocc == pytest.approx(_card()["test"]["srocc"], abs=2e-3), srocc
    assert srocc >= LEARNED_FLOOR
    assert np.isfinite(pred).all()


def test_distortion_stats_against_closed_forms():
    """Immerkaer's estimate recovers the sigma of white noise; block-constant
    images (JPEG's extreme) have steps only at 8-px boundaries; white noise
    has none preferred; a flat image is all flat."""
    from iqabench_plugins.models.cnniqa import distortion_stats

    torch.manual_seed(0)
    sigma = 0.05
    noise = (0.5 + sigma * torch.randn(1, 1, 256, 256)).expand(1, 3, 256, 256)  # grey: luma = the channel
    s = distortion_stats(noise)[0]
    estimate = torch.exp(4 * (s[6] - 1)) - 1e-4
    assert estimate == pytest.approx(sigma, rel=0.03)
    assert abs(float(s[0])) < 0.05 and abs(float(s[1])) < 0.05  # log blockiness ~ 0: no grid
    blocks = torch.rand(1, 1, 32, 32).repeat_interleave(8, -1).repeat_interleave(8, -2).expand(1, 3, 256, 256)
    b = distortion_stats(blocks)[0]
    assert b[0] > 5 and b[1] > 5  # every step sits on a boundary: ratio ~ mean step / 1e-4
    flat = distortion_stats(torch.full((1, 3, 64, 64), 0.3))[0]
    assert float(flat[2]) == pytest.approx(1.0) and float(flat[3]) == pytest.approx(1.0)


def test_whole_window_max_pool_is_the_separable_pooling_bit_for_bit():
    """Training patches pool over their whole feature map; the shortcut must
    give the same values AND route the gradient to the same element when
    values tie (quantised, flat regions), or training would silently change."""
    import torch.nn.functional as F

    from iqabench_plugins.models.cnniqa import _max_pool

    torch.manual_seed(0)
    x = torch.randint(0, 4, (6, 5, 26, 26)).float()  # many ties
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    weights = torch.randn(6, 5, 1, 1)
    fast = _max_pool(x1, 26, 16)
    slow = F.max_pool2d(F.max_pool2d(x2, (26, 1), (16, 1)), (1, 26), (1, 16))
    assert fast.shape == slow.shape == (6, 5, 1, 1)
    assert torch.equal(fast, slow)
    (fast * weights).sum().backward()
    (slow * weights).sum().backward()
    assert torch.equal(x1.grad, x2.grad)
    assert int((x1.grad != 0).sum()) == 6 * 5  # one element per map, as pooling picks


@pytest.mark.parametrize("shape", [(3, 7, 186, 186), (2, 4, 26, 26), (2, 3, 60, 91)])
def test_inference_pooling_equals_the_pooling_with_gradients_bit_for_bit(shape):
    """Without a gradient, the max and min pools take the strided-view path: the
    model's scores must not depend on whether autograd is on (ties included)."""
    import torch.nn.functional as F

    from iqabench_plugins.models.cnniqa import _max_pool, _min_pool

    torch.manual_seed(0)
    x = torch.randint(-3, 4, shape).float() / 2  # many ties
    reference_max = F.max_pool2d(F.max_pool2d(x, (26, 1), (16, 1)), (1, 26), (1, 16))
    reference_min = -F.max_pool2d(F.max_pool2d(-x, (26, 1), (16, 1)), (1, 26), (1, 16))
    with torch.no_grad():
        assert torch.equal(_max_pool(x, 26, 16), reference_max)
        assert torch.equal(_min_pool(x, 26, 16), reference_min)
    tracked = x.clone().requires_grad_(True)
    assert torch.equal(_max_pool(tracked, 26, 16), reference_max)
    assert torch.equal(_min_pool(tracked, 26, 16), reference_min)


def test_the_models_scores_do_not_depend_on_autograd():
    from iqabench.registry import lookup

    model = lookup("model", "cnniqa").obj().eval()
    x = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = model(x)
    tracked = model(x.clone().requires_grad_(True))
    assert torch.equal(plain, tracked.detach())


def test_soft_flat_is_exp_without_denormals():
    """exp(-s / step^2) wherever it is a normal float, 0 below (never a denormal)."""
    from iqabench_plugins.models.cnniqa import _FLAT_STEP, _soft_flat

    sq = torch.linspace(0, 0.2, 10001) ** 2
    out = _soft_flat(sq)
    ref = torch.exp(-sq / _FLAT_STEP**2)
    normal = ref >= torch.finfo(torch.float32).tiny
    assert torch.equal(out[normal & (out > 0)], ref[normal & (out > 0)])
    assert (out[~normal] == 0).all()
    assert float((ref - out).abs().max()) < 1e-37
