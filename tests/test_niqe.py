"""NIQE: the batched torch implementation against an independent, literal
numpy/scipy transcription of the MATLAB release; AGGD fits of known
distributions; monotonicity under blur and noise; deterministic fitting and
the cached, versioned artifact."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage, special

from iqabench_plugins.adversarial import niqe as N


# ------------------------------------------- a literal MATLAB transcription ---
def _ref_aggd(vec):
    gam = 0.2 + 0.001 * np.arange(9801)
    r_gam = special.gamma(2 / gam) ** 2 / (special.gamma(1 / gam) * special.gamma(3 / gam))
    leftstd = np.sqrt(np.mean(vec[vec < 0] ** 2))
    rightstd = np.sqrt(np.mean(vec[vec > 0] ** 2))
    gammahat = leftstd / rightstd
    rhat = np.mean(np.abs(vec)) ** 2 / np.mean(vec**2)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    alpha = gam[np.argmin((r_gam - rhatnorm) ** 2)]
    betal = leftstd * np.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
    betar = rightstd * np.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
    return alpha, betal, betar


def _ref_block_features(block):
    feat = []
    alpha, bl, br = _ref_aggd(block.ravel())
    feat += [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):
        pair = block.ravel() * np.roll(block, shift, axis=(0, 1)).ravel()
        alpha, bl, br = _ref_aggd(pair)
        meanparam = (br - bl) * special.gamma(2 / alpha) / special.gamma(1 / alpha)
        feat += [alpha, meanparam, bl, br]
    return feat


def _ref_features(rgb):
    """rgb: 3 x H x W float in [0,1] -> K x 36 (MATLAB computequality.m)."""
    from pyiqa.matlab_utils import imresize  # the MATLAB imresize port, as independent truth

    q = np.round(rgb * 255)
    im = np.round(0.298936021293775 * q[0] + 0.587043074451121 * q[1] + 0.114020904255103 * q[2])
    h, w = im.shape
    im = im[: h // 96 * 96, : w // 96 * 96]
    t = np.arange(-3, 4)
    win = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * (7 / 6) ** 2))
    win /= win.sum()
    per_scale = []
    for scale in (1, 2):
        mu = ndimage.correlate(im, win, mode="nearest")
        sigma = np.sqrt(np.abs(ndimage.correlate(im * im, win, mode="nearest") - mu * mu))
        structdis = (im - mu) / (sigma + 1)
        p = 96 // scale
        feats = [_ref_block_features(structdis[i:i + p, j:j + p])
                 for i in range(0, structdis.shape[0], p) for j in range(0, structdis.shape[1], p)]
        per_scale.append(np.array(feats))
        if scale == 1:
            im = imresize(torch.from_numpy(im)[None, None], scale=0.5, antialiasing=True)[0, 0].numpy()
    return np.concatenate(per_scale, axis=1)


def _ref_niqe(rgb, mu1, cov1):
    f = _ref_features(rgb)
    mu2, cov2 = f.mean(0), np.cov(f, rowvar=False)
    d = mu1 - mu2
    return float(np.sqrt(d @ np.linalg.pinv((cov1 + cov2) / 2) @ d))


# ------------------------------------------------------------------ data ---
@pytest.fixture(scope="module")
def pristine_test_images():
    import iqabench

    ds = iqabench.get_dataset("embedded")
    items = [it for it in ds.items("test") if "pristine" in it.name]
    return torch.stack([ds.load(it) for it in items])


# ----------------------------------------------------------------- tests ---
def test_features_and_score_match_the_literal_matlab_transcription(pristine_test_images):
    pytest.importorskip("pyiqa")
    g = torch.Generator().manual_seed(0)
    x = torch.cat([pristine_test_images[:2], torch.rand(1, 3, 192, 192, generator=g)])
    feats, _ = N.niqe_features(x.double())
    model = N.niqe_model()
    ours = N.niqe(x)
    for i in range(len(x)):
        ref = _ref_features(x[i].double().numpy())
        np.testing.assert_allclose(feats[i].numpy(), ref, rtol=1e-6, atol=1e-9)
        expected = _ref_niqe(x[i].double().numpy(), model.mu.numpy(), model.cov.numpy())
        assert float(ours[i]) == pytest.approx(expected, rel=1e-5)


def test_imresize_half_matches_matlab_imresize():
    pyiqa_resize = pytest.importorskip("pyiqa.matlab_utils").imresize
    g = torch.Generator().manual_seed(1)
    y = torch.rand(2, 1, 96, 70, generator=g, dtype=torch.float64) * 255
    torch.testing.assert_close(N.imresize_half(y), pyiqa_resize(y, scale=0.5, antialiasing=True), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [2.0, 1.0, 0.6])
def test_aggd_fit_recovers_the_shape_of_a_generalised_gaussian(shape):
    from scipy.stats import gennorm

    v = torch.from_numpy(gennorm.rvs(shape, size=(1, 400_000), random_state=0))
    alpha, bl, br = N.aggd_fit(v)
    assert float(alpha) == pytest.approx(shape, rel=0.03)
    assert float(bl) == pytest.approx(float(br), rel=0.03)  # symmetric


def test_niqe_rises_with_blur_and_noise_on_average(pristine_test_images):
    from torchvision.transforms.functional import gaussian_blur

    x = pristine_test_images[:8]
    g = torch.Generator().manual_seed(0)
    clean = N.niqe(x).mean()
    blur = [N.niqe(gaussian_blur(x, [2 * int(3 * s) + 1] * 2, [s, s])).mean() for s in (1.0, 2.0, 3.0)]
    noise = [N.niqe((x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)).mean() for s in (0.05, 0.1, 0.2)]
    for series in (blur, noise):
        levels = torch.stack([clean, *series])
        assert (levels[1:] > levels[:-1]).all(), levels


def test_batched_niqe_equals_one_image_at_a_time(pristine_test_images):
    x = pristine_test_images[:3]
    batched = N.niqe(x)
    single = torch.cat([N.niqe(x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-12, atol=0)


def test_fitting_is_deterministic_and_the_artifact_is_versioned_and_reused(pristine_test_images):
    import iqabench
    from iqabench.artifacts import cache_dir, load_state

    ds = iqabench.get_dataset("embedded")
    train = [ds.load(it) for it in ds.items("train") if "pristine" in it.name]
    mu_a, cov_a, n_a = N.fit_pristine(train)
    assert mu_a.shape == (36,) and cov_a.shape == (36, 36)
    assert torch.allclose(cov_a, cov_a.T)

    info = N.niqe_model_info()
    if "fitted" in info["source"]:
        # the artifact was fitted independently, earlier: bit-identical
        assert info["version"] == N.NIQE_VERSION and info["patch"] == 96 and info["threshold"] == 0.75
        assert info["patches"] == n_a and info["images"] == len(train)
        state = load_state(cache_dir("niqe") / info["file"])  # the file's name: keys never hold a cache path
        assert torch.equal(state["mu"], mu_a) and torch.equal(state["cov"], cov_a)
        assert "niqe" in info["file"] and info["sha256"]
    else:  # published parameters on this machine: fit a second time instead
        mu_b, cov_b, n_b = N.fit_pristine(train)
        assert torch.equal(mu_a, mu_b) and torch.equal(cov_a, cov_b) and n_a == n_b


def test_published_parameters_are_used_when_present_locally(tmp_path, monkeypatch):
    import scipy.io

    mu = np.arange(36, dtype=np.float64)
    cov = np.eye(36)
    path = tmp_path / "niqe_modelparameters.mat"
    scipy.io.savemat(str(path), {"mu_prisparam": mu[None], "cov_prisparam": cov})
    monkeypatch.setenv("IQABENCH_NIQE_PARAMS", str(path))
    assert N._local_pyiqa_params() == path
    model = N._pyiqa_model(path)
    assert torch.equal(model.mu, torch.from_numpy(mu)) and "published" in model.info["source"]


def test_too_small_images_are_refused_with_the_patch_size():
    from iqabench.errors import IQABenchError

    with pytest.raises(IQABenchError, match="96x96"):
        N.niqe_features(torch.rand(1, 3, 95, 200))


def test_mscn_has_a_finite_gradient_on_flat_regions_and_the_same_values():
    """An 8-bit image with exactly flat 7x7 windows (blur, colour quantisation) has local
    variance 0 there; sqrt's gradient at 0 used to turn the whole input gradient into NaN,
    which made every gradient attack on the NIQE model stop with a non-finite gradient."""
    y = torch.full((1, 1, 40, 40), 128.0, dtype=torch.float64)
    y[..., 20:, :] = 60.0  # two flat halves: variance exactly 0 away from the edge
    y.requires_grad_(True)
    coeffs, sigma = N.mscn(y)
    (coeffs.square().sum() + sigma.sum()).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    mu = N._gauss_filter(y.detach())
    expected = torch.sqrt((N._gauss_filter(y.detach() ** 2) - mu * mu).abs())
    assert torch.equal(sigma.detach(), expected)  # forward values untouched
