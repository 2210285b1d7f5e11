"""Calibration of the model zoo against pyiqa (issue 14, item 3).

pyiqa calibrates its re-implementations by scoring the same images with the
original code and with its own (``ResultsCalibra/`` in its repository).
Here the original is pyiqa itself: for every zoo model, pyiqa's network is
built exactly as its metric of the same name builds it (``DEFAULT_CONFIGS``
-> ``build_network``; every weight download replaced by "keep the seeded
random initialisation", :func:`offline_construction`), its state dict is
saved in pyiqa's checkpoint layout (``{"params": state}``) and loaded into
iqabench's wrapper through ``--weights``, and both score the same images:
iqabench's score must equal pyiqa's inference within 1e-4 relative.  The
one exception, NIQE on photographs with flat areas, is an xfail below.

"The same crop setting": pyiqa's whole-image networks (DBCNN, MUSIQ,
TOPIQ-NR, NIMA, CLIP-IQA, NIQE, BRISQUE) score the image itself and the
wrapper is run with ``crop_size=0``.  pyiqa's cropping networks (HyperIQA,
TReS, MANIQA) average over ``pyiqa.archs.arch_util.uniform_crop``'s crops,
which iqabench's even grid never reproduces (it is centred, pyiqa's starts
at the top-left corner; see the README's "The zoo against pyiqa"): the wrapper,
at its default crop settings, scores each of pyiqa's 224 x 224 crops and
the mean is compared with pyiqa's forward on the whole image.  What the
default crop policy changes is measured by ``bench/crop_policy.py``.

Nothing here reaches the network (``no_network``); pyiqa is imported (about
7 s) only by these tests.
"""
from __future__ import annotations

import sys
import types

import pytest
import torch

import iqabench

#: the tolerance of the issue: iqabench's score == pyiqa's within 1e-4 relative
RTOL = 1e-4

#: zoo model -> (image height, width, pyiqa's test-time crops for the test or
#: None for a whole-image network).  pyiqa's defaults are 25 (HyperIQA), 50
#: (TReS) and 20 (MANIQA) crops; fewer keep the CPU cost down and still
#: exercise its crop placement and averaging.
NETWORKS = {
    "hyperiqa": (232, 250, 4),
    "tres": (232, 250, 2),
    "maniqa": (230, 236, 1),
    "dbcnn": (72, 88, None),
    "musiq": (80, 96, None),
    "topiq_nr": (72, 88, None),
    "nima": (80, 96, None),
}
#: pyiqa's random initialisation leaves some heads almost blind to the image
#: (NIMA: a near-uniform rating distribution, mean 5.478 for any image); their
#: last layer is scaled up (parameter name -> factor) so that the score
#: depends on the input far beyond the tolerance
SHARPEN = {"nima": {"classifier.2.weight": 300.0}}
#: the pyiqa module defining each metric's network (pyiqa's registry fills lazily)
ARCH_MODULE = {"hyperiqa": "hypernet_arch", "tres": "tres_arch", "maniqa": "maniqa_arch", "dbcnn": "dbcnn_arch",
               "musiq": "musiq_arch", "topiq_nr": "topiq_arch", "nima": "nima_arch"}
#: pyiqa's attribute holding its number of test-time crops
CROP_ATTR = {"hyperiqa": "num_crop", "tres": "test_sample", "maniqa": "test_sample"}
#: MANIQA (ViT-B/8: 784 tokens per 224 crop) needs well over 20 s here on a CPU
SLOW = {"maniqa"}


def _pyiqa(name: str):
    from iqabench_plugins.zoo.offline import import_pyiqa_module

    return import_pyiqa_module(name)


def pyiqa_metric_net(metric: str, seed: int = 0) -> tuple[torch.nn.Module, list[str]]:
    """pyiqa's network for ``metric``, built as its metric builds it, with
    every download skipped: seeded random initialisation, eval mode; and
    the downloads skipped (``pyiqa:<file>`` for pyiqa's own files)."""
    from iqabench_plugins.zoo.offline import offline_construction

    opts = dict(_pyiqa("pyiqa.default_model_configs").DEFAULT_CONFIGS[metric]["metric_opts"])
    module = f"pyiqa.archs.{ARCH_MODULE[metric]}"
    torch.manual_seed(seed)
    with offline_construction(module) as skipped:
        net = _pyiqa("pyiqa.archs").build_network(opts)
    with torch.no_grad():
        for param, factor in SHARPEN.get(metric, {}).items():
            net.get_parameter(param).mul_(factor)
    return net.eval(), list(skipped)


def wrapper_with(net: torch.nn.Module, name: str, tmp_path, **params) -> torch.nn.Module:
    """iqabench's ``name`` holding ``net``'s weights, read from a file in
    pyiqa's checkpoint layout (as a published checkpoint would be)."""
    path = tmp_path / f"{name}-pyiqa-layout.pth"
    torch.save({"params": net.state_dict()}, path)
    model = iqabench.get_model(name, weights=str(path), seed=99, **params)
    assert model.weights.startswith(path.name), model.weights
    return model


def image(batch: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    """Smooth structure, edges and noise (a random field alone would make
    every network's features degenerate), in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    out = []
    for b in range(batch):
        phase = torch.rand(3, generator=g) * 6
        base = torch.stack([0.5 + 0.4 * torch.sin(5 * xx + 3 * yy + phase[c]) for c in range(3)])
        base = base * (0.6 + 0.4 * ((xx > 0.3 + 0.1 * b) ^ (yy > 0.6)).float())
        out.append((base + 0.05 * torch.rand(3, h, w, generator=g)).clamp(0, 1))
    return torch.stack(out)


def assert_discriminates(scores: torch.Tensor) -> None:
    """The scores of different inputs differ by more than the tolerance (a
    random network whose output hardly depends on its input would pass any
    comparison at 1e-4 relative)."""
    scores = scores.reshape(-1).double()
    spread = float(scores.max() - scores.min())
    assert spread > RTOL * float(scores.abs().max()), f"scores {scores.tolist()} barely depend on the input"


def assert_calibrated(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Equal within RTOL relative, and so are the differences between images
    (within 1% of their spread, above float32 rounding): the part of the
    score that depends on the input is the same, not just its level."""
    ours, theirs = ours.reshape(-1).double(), theirs.reshape(-1).double()
    assert ours.shape == theirs.shape and len(ours) >= 2
    assert torch.isfinite(theirs).all()
    level = float(theirs.abs().max().clamp_min(1e-3))
    torch.testing.assert_close(ours, theirs, rtol=RTOL, atol=RTOL * level)
    assert_discriminates(theirs)
    spread = float(theirs.max() - theirs.min())
    torch.testing.assert_close(ours - ours.mean(), theirs - theirs.mean(), rtol=0, atol=1e-2 * spread + 1e-6 * level)


def pyiqa_crops(x: torch.Tensor, count: int) -> torch.Tensor:
    """pyiqa's test-time crops of ``x`` (image-major), by pyiqa's own code."""
    crops = _pyiqa("pyiqa.archs.arch_util").uniform_crop([x], 224, count)
    return crops[0] if isinstance(crops, (list, tuple)) else crops


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in NETWORKS])
def test_network_scores_equal_pyiqa_inference(name, tmp_path, no_network):
    from iqabench.registry import registry

    h, w, crops = NETWORKS[name]
    net, downloads = pyiqa_metric_net(name)
    # the zoo's default weights are the file pyiqa's metric loads
    assert f"pyiqa:{registry('model')[name].obj.spec.checkpoint}" in downloads
    x = image(2, h, w)
    if crops is None:
        model = wrapper_with(net, name, tmp_path, crop_size=0)
        with torch.no_grad():
            ours, theirs = model(x), net(x)
    else:
        setattr(net, CROP_ATTR[name], crops)
        model = wrapper_with(net, name, tmp_path)  # default crop settings, on 224 x 224 crops
        with torch.no_grad():
            ours, theirs = model(pyiqa_crops(x, crops)).reshape(2, crops).mean(1), net(x)
    assert_calibrated(ours, theirs)
    assert not no_network


def test_clipiqa_equals_pyiqa_inference(tmp_path, no_network, monkeypatch):
    """pyiqa's ``clipiqa_arch`` cannot be imported as installed here: the
    OpenAI ``clip`` package it imports needs ``pkg_resources`` (only for a
    version check), which is why iqabench re-implements CLIP-IQA on pyiqa's
    ``clip_model.CLIP``.  The test supplies a stand-in ``pkg_resources``,
    builds pyiqa's CLIPIQA around a random CLIP (through OpenAI's
    ``build_model``, which rounds the weights to fp16 as the published file
    is) and checks the re-implementation against it -- prompts and
    tokenizer included."""
    import packaging.version

    monkeypatch.setitem(sys.modules, "pkg_resources", types.SimpleNamespace(packaging=packaging))
    from iqabench_plugins.zoo.archs import CLIP_RN50, CLIPIQA_PROMPTS, clip_tokenize

    clip_model = _pyiqa("pyiqa.archs.clip_model")
    arch = _pyiqa("pyiqa.archs.clipiqa_arch")
    torch.manual_seed(0)
    state = clip_model.CLIP(**CLIP_RN50).state_dict()
    state.update({k: torch.tensor(CLIP_RN50[k]) for k in ("context_length", "vocab_size")})
    state["input_resolution"] = torch.tensor(CLIP_RN50["image_resolution"])

    def load(name, device="cpu", **kwargs):  # pyiqa's clip_model.load, minus the download
        model = clip_model.build_model({k: v.clone() for k, v in state.items()}).to(device)
        return model.float()

    monkeypatch.setattr(arch, "load", load)
    net = arch.CLIPIQA(model_type="clipiqa", pretrained=False).eval()
    assert torch.equal(clip_tokenize(CLIPIQA_PROMPTS), net.prompt_pairs)
    path = tmp_path / "clip-rn50.pth"
    torch.save({"params": net.clip_model[0].state_dict()}, path)
    model = iqabench.get_model("clipiqa", weights=str(path), crop_size=0)
    x = image(2, 80, 96)
    with torch.no_grad():
        assert_calibrated(model(x), net(x))
    assert not no_network


def _niqe_pair(tmp_path):
    """pyiqa's NIQE and iqabench's with the same random pristine model, read
    from one ``niqe_modelparameters.mat``-style file (converted for iqabench
    by the zoo's own converter)."""
    import scipy.io
    from safetensors.torch import save_file

    from iqabench_plugins.zoo.classical import convert_niqe_mat

    g = torch.Generator().manual_seed(0)
    a = torch.randn(36, 36, generator=g, dtype=torch.float64)
    mu, cov = torch.randn(36, generator=g, dtype=torch.float64), a @ a.T / 36 + torch.eye(36, dtype=torch.float64)
    mat = tmp_path / "niqe_modelparameters.mat"
    scipy.io.savemat(str(mat), {"mu_prisparam": mu.numpy()[None], "cov_prisparam": cov.numpy()})
    st = tmp_path / "niqe.safetensors"
    save_file({k: v.contiguous() for k, v in convert_niqe_mat(mat).items()}, str(st))
    theirs = _pyiqa("pyiqa.archs.niqe_arch").NIQE(pretrained_model_path=str(mat))
    return iqabench.get_model("niqe", weights=str(st)), theirs


def test_niqe_equals_pyiqa_inference(tmp_path, no_network):
    """iqabench's NIQE follows the authors' MATLAB release (grey = uint8
    ``rgb2gray``), pyiqa's metric takes the Y of YIQ rounded once: on a grey
    image both greys are the image itself, so the rest of the algorithm is
    compared exactly (on photographs with flat areas it is not: see the
    xfail below)."""
    ours, theirs = _niqe_pair(tmp_path)
    x = image(2, 200, 232)
    grey = ((x * 255).round().mean(1, keepdim=True).round() / 255).expand(-1, 3, -1, -1).contiguous()
    with torch.no_grad():
        assert_calibrated(ours(grey), theirs(grey))
    assert not no_network


def _brisque_pair(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "brisque_svm_weights.pth"  # pyiqa's layout: (sv_coef, sv)
    torch.save((torch.randn(20, generator=g), torch.rand(20, 36, generator=g) * 2 - 1), path)
    monkeypatch.setenv("IQABENCH_BRISQUE_PARAMS", str(path))
    theirs = _pyiqa("pyiqa.archs.brisque_arch").BRISQUE(pretrained_model_path=str(path))
    ours = iqabench.get_model("brisque")
    assert ours.weights.startswith("brisque-published-")
    return ours, theirs


def test_brisque_equals_pyiqa_inference(tmp_path, monkeypatch, no_network):
    ours, theirs = _brisque_pair(tmp_path, monkeypatch)
    x = image(2, 72, 88)
    with torch.no_grad():
        assert_calibrated(ours(x), theirs(x))
    assert not no_network


def _real_image(root, name: str, grey: bool = False) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    img = Image.open(root / "Images" / name)
    if grey:  # an 8-bit grey photograph, as R = G = B
        return torch.from_numpy(np.asarray(img.convert("L"), dtype=np.float32) / 255)[None, None].expand(1, 3, -1, -1).contiguous()
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None].contiguous()


def test_brisque_equals_pyiqa_on_real_photographs(tmp_path, monkeypatch, livec_sample, no_network):
    x = torch.cat([_real_image(livec_sample, n)[..., :256, :256] for n in ("102.bmp", "1020.JPG")])
    ours, theirs = _brisque_pair(tmp_path, monkeypatch)
    with torch.no_grad():
        assert_calibrated(ours(x), theirs(x))
    assert not no_network


@pytest.mark.xfail(strict=True, reason="NIQE is ill-conditioned on flat (saturated) areas: their MSCN coefficients, "
                                       "0 in exact arithmetic, come out as +-1e-11 with signs set by the order of "
                                       "floating-point sums, and the AGGD fit counts them as left or right values "
                                       "(1020.JPG: 1444 such pixels in one block, shape 0.943 in iqabench, 0.979 in a literal "
                                       "numpy transcription); iqabench's and pyiqa's scores differ by up to ~0.5%")
def test_niqe_equals_pyiqa_on_a_real_photograph(tmp_path, livec_sample, no_network):
    ours, theirs = _niqe_pair(tmp_path)
    x = torch.cat([_real_image(livec_sample, n, grey=True) for n in ("1020.JPG", "1065.JPG")])
    with torch.no_grad():
        assert_calibrated(ours(x), theirs(x))


def _pyiqa_range(metric: str) -> tuple[float, float]:
    text = _pyiqa("pyiqa.default_model_configs").DEFAULT_CONFIGS[metric]["score_range"]
    lo, hi = (float(v.strip().lstrip("~")) for v in text.split(","))
    return lo, hi


#: where the declared nominal range is tighter than pyiqa's, and why
NOMINAL_EXCEPTIONS = {
    # pyiqa's NIMA score is the mean of a distribution over the ratings 1..10
    # (dist_to_mos), so it lies in [1, 10]; pyiqa declares "0, 10"
    "nima": (1.0, 10.0),
}


@pytest.mark.parametrize("name", ["hyperiqa", "dbcnn", "tres", "maniqa", "musiq", "topiq_nr", "nima",
                                  "clipiqa", "niqe", "brisque"])
def test_nominal_range_is_pyiqas_score_range(name):
    """Every zoo model's nominal range is its pyiqa metric's declared
    ``score_range`` (all ten have one), and lower_better agrees."""
    from iqabench.registry import registry

    cls = registry("model")[name].obj
    cfg = _pyiqa("pyiqa.default_model_configs").DEFAULT_CONFIGS[name]
    assert tuple(cls.nominal_range) == NOMINAL_EXCEPTIONS.get(name, _pyiqa_range(name))
    assert cls.lower_better == bool(cfg.get("lower_better", False))
