"""The pyiqa-backed model zoo: offline construction, gradients, weights, recipes.

No test downloads anything (tests/test_fetch.py serves files on the
loopback): every network is built with its random initialisation
(``--weights random``; pyiqa's checkpoints are not in this machine's cache),
and every construction runs with the socket layer patched to fail loudly.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import iqabench
from iqabench.errors import ModelError, WeightsError
from iqabench.registry import registry

ZOO_NAMES = ["hyperiqa", "dbcnn", "tres", "maniqa", "musiq", "topiq_nr", "nima", "clipiqa", "niqe", "brisque"]
LOWER_BETTER = {"niqe", "brisque"}
#: test inputs: (batch, side, model params) -- the smallest each model takes
#: (fixed-input networks get their native 224; the others their whole image)
INPUTS = {
    "hyperiqa": (1, 224, {}), "tres": (1, 224, {}), "maniqa": (1, 224, {}),
    "dbcnn": (2, 64, {"crop_size": 0}), "musiq": (1, 64, {"crop_size": 0}),
    "topiq_nr": (2, 64, {"crop_size": 0}), "nima": (1, 96, {"crop_size": 0}),
    "clipiqa": (2, 64, {"crop_size": 0}), "niqe": (2, 96, {}), "brisque": (2, 64, {}),
}


@pytest.fixture
def empty_pyiqa_cache(tmp_path, monkeypatch):
    """pyiqa's cache dir pointed at an empty folder: no checkpoint anywhere."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("IQABENCH_PYIQA_CACHE", raising=False)
    monkeypatch.delenv("IQABENCH_BRISQUE_PARAMS", raising=False)
    return tmp_path


def _image(batch, side, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, side, side, generator=g)


# ------------------------------------------------------------ every model ---
#: MANIQA (ViT-B/8 at 224 px) needs over 10 s for one backward pass on a CPU core
SLOW_BUILD = {"maniqa"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_BUILD else n for n in ZOO_NAMES])
def test_builds_offline_scores_and_passes_gradients(name, no_network, empty_pyiqa_cache):
    batch, side, params = INPUTS[name]
    model = iqabench.get_model(name, weights="random", **params)
    assert model.weights.startswith("random-init"), model.weights
    assert model.lower_better == (name in LOWER_BETTER)
    assert len(model.nominal_range) == 2 and model.nominal_range[0] < model.nominal_range[1]
    x = _image(batch, side).requires_grad_(True)
    scores = model(x)
    assert scores.shape == (batch,)
    assert torch.isfinite(scores).all()
    scores.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0, f"{name}: no gradient reaches the input"
    assert not no_network


#: networks with RGB convolutions (MUSIQ's sees its multi-scale patches of the
#: normalised image; MANIQA's ViT is slow; NIQE and BRISQUE have none)
NORMALISING = ["hyperiqa", "tres", "dbcnn", "topiq_nr", "nima", "clipiqa", "musiq"]


@pytest.mark.parametrize("name", NORMALISING)
def test_declared_input_normalisation_is_what_the_network_applies(name, no_network, empty_pyiqa_cache):
    """A constant-colour image stays constant through any crop or resize, so each
    RGB convolution must receive exactly (colour - mean) / std per channel."""
    _, side, params = INPUTS[name]
    model = iqabench.get_model(name, weights="random", **params)
    mean, std = (torch.tensor(v, dtype=torch.float64) for v in model.input_normalisation())
    assert mean.shape == std.shape == (3,) and (std > 0).all()
    seen = []
    hooks = [m.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].detach()))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels == 3]
    colour = torch.tensor([0.2, 0.5, 0.9])
    try:
        with torch.no_grad():
            model(colour.view(1, 3, 1, 1).expand(1, 3, side, side).clone())
    finally:
        for h in hooks:
            h.remove()
    assert seen
    expected = ((colour.double() - mean) / std).float()
    for inp in seen:
        assert inp.shape[1] == 3
        torch.testing.assert_close(inp.amax(dim=(0, 2, 3)), expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(inp.amin(dim=(0, 2, 3)), expected, rtol=0, atol=1e-5)


def test_models_without_normalisation_declare_identity():
    from iqabench_plugins.models.cnniqa import CNNIQA

    assert CNNIQA().input_normalisation() == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def test_eval_is_deterministic_and_crops_average():
    model = iqabench.get_model("brisque", weights="random", crops=4, crop_size=48)
    x = _image(1, 80)
    with torch.no_grad():
        a, b = model(x), model(x)
        assert torch.equal(a, b)
        from iqabench_plugins.zoo.models import grid_crops

        crops = grid_crops(x, 48, 4)
        assert crops.shape == (4, 3, 48, 48)
        assert torch.allclose(model.training_forward(crops).mean(), a[0], atol=1e-5)
    # an image smaller than the crop is upscaled, not refused
    assert model(_image(1, 40)).shape == (1,)


def test_bad_crop_parameters_are_refused():
    from iqabench.errors import ParameterError

    with pytest.raises(ParameterError, match="'crops' must be >= 1"):
        iqabench.get_model("brisque", weights="random", crops=0)
    with pytest.raises(ParameterError, match="crop_size"):
        iqabench.get_model("niqe", weights="random", crop_size=64)  # NIQE needs 96 px patches
    with pytest.raises(Exception, match="'network'"):
        iqabench.get_model("tres", weights="random", network="vgg")


def test_parameters_are_typed_and_described():
    from iqabench.params import param_specs

    specs = param_specs(registry("model")["tres"].obj)
    assert specs["crops"].default == 1 and specs["crops"].type is int
    assert specs["crop_size"].default == 224
    assert "resnet18" in specs["network"].type_name()
    assert param_specs(registry("model")["niqe"].obj)["crop_size"].default == 0  # whole image


# --------------------------------------------------------------- weights ---
def _plain_state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_local_weights_files_reproduce_the_outputs(tmp_path, no_network):
    from safetensors.torch import save_file

    model = iqabench.get_model("musiq", weights="random", seed=3, crop_size=0)
    x = _image(2, 64, seed=1)
    with torch.no_grad():
        ref = model(x)
    state = _plain_state(model)
    st, pth = tmp_path / "musiq.safetensors", tmp_path / "musiq.pth"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    torch.save(state, pth)
    for path in (st, pth):
        other = iqabench.get_model("musiq", weights=str(path), seed=99, crop_size=0)
        assert other.weights.startswith(path.name)
        with torch.no_grad():
            assert torch.allclose(other(x), ref, atol=1e-5)

    # pyiqa's own layout ({"params": net state}, no "net." prefix) loads with the identity affine
    pyiqa_file = tmp_path / "musiq_pyiqa_layout.pth"
    torch.save({k[4:]: v for k, v in state.items() if k.startswith("net.")}, pyiqa_file)
    other = iqabench.get_model("musiq", weights=str(pyiqa_file), crop_size=0)
    with torch.no_grad():
        raw = (ref - state["out_offset"]) / state["out_scale"]
        assert torch.allclose(other(x), raw, atol=1e-5)
    assert not no_network


def test_pyiqa_cache_checkpoint_is_the_default(tmp_path, monkeypatch):
    """``--weights default`` finds pyiqa's checkpoint by its file name in
    pyiqa's cache and loads it safely."""
    model = iqabench.get_model("musiq", weights="random", seed=5, crop_size=0)
    state = _plain_state(model)
    cache = tmp_path / "pyiqa-cache"
    cache.mkdir()
    torch.save({"params": {k[4:]: v for k, v in state.items() if k.startswith("net.")}},
               cache / "musiq_koniq_ckpt-e95806b9.pth")
    monkeypatch.setenv("IQABENCH_PYIQA_CACHE", str(cache))
    loaded = iqabench.get_model("musiq", crop_size=0)
    assert loaded.weights.startswith("musiq_koniq_ckpt-e95806b9.pth (sha256:")
    x = _image(1, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), (model(x) - state["out_offset"]) / state["out_scale"], atol=1e-5)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['ZOO_MARKER']}",))


def test_a_malicious_pickle_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("ZOO_MARKER", str(marker))
    path = tmp_path / "evil.pth"
    torch.save({"params": {"fc.weight": _Evil()}}, path)
    with pytest.raises(WeightsError, match="refused to load"):
        iqabench.get_model("brisque", weights=str(path))
    assert not marker.exists()


def test_wrong_architecture_weights_name_the_mismatch(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"net.something.weight": torch.zeros(3)}, path)
    with pytest.raises(ModelError, match="model 'brisque': weights need exactly sv, sv_coef, rho, gamma"):
        iqabench.get_model("brisque", weights=str(path))
    with pytest.raises(ModelError, match="model 'musiq': weights do not match the architecture"):
        iqabench.get_model("musiq", weights=str(path))
    with pytest.raises(WeightsError, match="nope.pth"):
        iqabench.get_model("hyperiqa", weights=str(tmp_path / "nope.pth"))


def test_brisque_published_svr_from_a_local_file(tmp_path, monkeypatch):
    """pyiqa's ``brisque_svm_weights.pth`` is a tuple (sv_coef, sv); when it is
    on disk it is converted once and becomes the default."""
    g = torch.Generator().manual_seed(0)
    sv = torch.rand(10, 36, generator=g) * 2 - 1
    coef = torch.randn(10, generator=g)
    src = tmp_path / "brisque_svm_weights.pth"
    torch.save((coef, sv), src)
    monkeypatch.setenv("IQABENCH_BRISQUE_PARAMS", str(src))
    model = iqabench.get_model("brisque")
    assert model.weights.startswith("brisque-published-")
    assert model.net.sv.shape == (10, 36) and float(model.net.rho) == pytest.approx(-153.591)
    assert torch.isfinite(model(_image(1, 64))).all()


def test_brisque_without_svr_is_random_init_and_says_so(empty_pyiqa_cache):
    model = iqabench.get_model("brisque", weights="random")
    assert model.weights == "random-init (seed 0)"


@pytest.mark.parametrize("name, file", [("brisque", "brisque_svm_weights.pth"),
                                        ("hyperiqa", "HyperIQA-resnet50-koniq10k-c96c41b1.pth")])
def test_default_weights_missing_offline_is_one_line_naming_the_fix(name, file, no_network, empty_pyiqa_cache):
    """Offline (the test configuration), a published checkpoint that is not
    cached is an error naming the model, the file, where it was looked for
    and the command that fetches it -- not a silent random network."""
    with pytest.raises(WeightsError) as err:
        iqabench.get_model(name)
    msg = str(err.value)
    assert "\n" not in msg and f"model {name!r}" in msg and file in msg
    assert str(empty_pyiqa_cache / "torch-home" / "hub" / "pyiqa") in msg and f"iqabench fetch {name}" in msg
    assert not no_network


def test_niqe_uses_the_shared_pristine_model_and_agrees_with_it(tmp_path, monkeypatch):
    """NIQE's default weights are AMI-FGSM's pristine model (the published
    parameters if on disk, else the fit on the embedded pristine crops: here a
    stand-in file, to keep the fit out of this test), and the differentiable
    zoo NIQE scores exactly what the reference implementation scores."""
    from safetensors.torch import save_file

    import iqabench_plugins.adversarial.niqe as ref

    g = torch.Generator().manual_seed(0)
    a = torch.randn(36, 36, generator=g, dtype=torch.float64)
    mu, cov = torch.randn(36, generator=g, dtype=torch.float64), a @ a.T / 36 + torch.eye(36, dtype=torch.float64)
    path = tmp_path / "niqe-mvg-standin.safetensors"
    save_file({"mu": mu, "cov": cov}, str(path))
    monkeypatch.setattr(ref, "niqe_model", lambda: ref.NIQEModel(mu, cov, {"file": path.name}, path))
    model = iqabench.get_model("niqe")
    assert model.weights.startswith("niqe-mvg-standin.safetensors")
    # a natural-looking test image: smooth gradients, edges and mild noise
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 200), torch.linspace(0, 1, 232), indexing="ij")
    img = torch.stack([xx, yy, (xx > 0.5).double() * 0.5 + 0.25 * torch.sin(9 * yy)]).float()
    x = (img + 0.03 * torch.rand(3, 200, 232, generator=g)).clamp(0, 1)[None]
    expected = ref.niqe(x, model=ref.NIQEModel(mu, cov))
    with torch.no_grad():
        assert torch.allclose(model(x).double(), expected.double(), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------- recipes ---
def _recipe(name, profile):
    return registry("model")[name].obj.recipe_for(profile)


def test_paper_and_quick_recipes():
    hyper = _recipe("hyperiqa", "paper")
    assert (hyper.loss, hyper.optimizer, hyper.lr, hyper.weight_decay, hyper.epochs, hyper.lr_step) == \
        ("l1", "adam", 2e-5, 5e-4, 24, 8)
    assert (hyper.crop, hyper.patches_per_image, hyper.batch_size) == (224, 25, 32)
    assert hyper.extra["lr_mult"] == {"": 10.0, "net.base_model.": 1.0, "net.lda_modules.": 1.0}
    assert _recipe("hyperiqa", "default") == hyper
    paper = _recipe("dbcnn", "default")
    assert paper.loss == "mse" and [p["epochs"] for p in paper.extra["phases"]] == [8, 8]
    assert paper.extra["phases"][0]["optimizer"] == "sgd" and paper.extra["phases"][0]["trainable"] == ["net.fc."]
    quick = _recipe("dbcnn", "quick")
    assert quick.crop < 224 and quick.epochs < paper.epochs and quick.patches_per_image < 25
    for name in ("hyperiqa", "dbcnn", "tres", "maniqa", "musiq", "topiq_nr", "nima"):
        q = _recipe(name, "quick")  # fits the embedded dataset's 192 px images, minutes on a CPU
        assert q.crop <= 192 and q.patches_per_image == 1 and q.extra["steps_per_epoch"] * q.batch_size <= 96
    tres = _recipe("tres", "paper")
    assert (tres.epochs, tres.lr_step, tres.loss, tres.lr) == (12, 4, "l1", 2e-5)
    assert "not from this model's paper" in _recipe("maniqa", "paper").extra["source"]
    for name in ("clipiqa", "niqe", "brisque"):
        with pytest.raises(ModelError, match="cannot be trained"):
            _recipe(name, "paper")
    with pytest.raises(ModelError, match="no recipe 'fast'"):
        _recipe("dbcnn", "fast")


# ------------------------------------------------------------- CLI runs ---
def _run_cli(invoke, tmp_path, monkeypatch, name):
    """``iqabench run`` on the embedded data.  The model's clean range is
    measured on 8 images instead of all 1664 (the harness default would take
    minutes for a CNN on this CPU); everything else is the real runner."""
    from iqabench.experiments import evasion
    from iqabench.models.evaluation import predict

    def quick_range(model, dataset, device, batch_size=16):
        if model.score_range is None:
            p = predict(model, dataset, dataset.items("test")[:8], device, batch_size)
            model.score_range = (float(p.min()), float(p.max()) + 1e-6)
        return model.score_range

    monkeypatch.setattr(evasion, "ensure_score_range", quick_range)
    store = tmp_path / f"{name}.sqlite"
    weights = [] if name == "niqe" else ["--weights", "random"]  # niqe's default is a fitted MVG
    result = invoke(["run", "--model", name, "--attack", "ifgsm", "--dataset", "embedded", "--limit", "2",
                     "--param", "iters=1", "--store", str(store), "--no-leaderboard", "--quiet", *weights])
    assert result.exit_code == 0, result.output
    manifest = json.loads(next((tmp_path / "manifests").glob("*.json")).read_text())
    return manifest, store


@pytest.mark.parametrize("name", ["brisque", "hyperiqa"])
def test_cli_run_records_random_init(name, invoke, tmp_path, monkeypatch, empty_pyiqa_cache):
    manifest, store = _run_cli(invoke, tmp_path, monkeypatch, name)
    import sqlite3

    text = json.dumps(manifest) + " ".join(map(str, sqlite3.connect(store).execute("SELECT * FROM cells").fetchall()))
    assert "random-init" in text


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ZOO_NAMES if n not in ("brisque", "hyperiqa")])
def test_cli_run_every_model(name, invoke, tmp_path, monkeypatch, empty_pyiqa_cache):
    manifest, store = _run_cli(invoke, tmp_path, monkeypatch, name)
    assert "random-init" in json.dumps(manifest) or name == "niqe"


def test_plugin_import_does_not_import_pyiqa():
    code = ("import sys, iqabench_plugins.zoo, iqabench_plugins.realdata, iqabench_plugins.zoo.models; "
            "assert 'pyiqa' not in sys.modules, 'pyiqa imported at plugin import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clip_archive_is_checked_before_loading(tmp_path, monkeypatch):
    """OpenAI's CLIP file (TorchScript) is only loaded when its sha256 is the
    published one (checked as a published file is, and again before conversion)."""
    from iqabench_plugins.zoo.models import convert_clip_archive

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "clip").mkdir(parents=True)
    (tmp_path / "hub" / "clip" / "RN50.pt").write_bytes(b"not the real archive")
    with pytest.raises(WeightsError, match=r"RN50.pt: sha256 [0-9a-f]+\.\.\. is not the published afeb0e10"):
        iqabench.get_model("clipiqa")
    with pytest.raises(WeightsError, match="not OpenAI's RN50 CLIP archive"):
        convert_clip_archive(tmp_path / "hub" / "clip" / "RN50.pt")


def _tiny_folder(tmp_path, n=6, side=64):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = ["name,mos,split"]
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png,{10 * i + 5},{'test' if i == n - 1 else 'train'}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return iqabench.get_dataset("folder", root=str(tmp_path), csv="labels.csv")


def test_recipe_phases_and_lr_multipliers_drive_the_trainer(tmp_path):
    """DBCNN's two phases (fc-only SGD, then everything with Adam) and
    HyperIQA's 10x hyper-network learning rate, through the generic trainer."""
    from dataclasses import replace

    import iqabench.models.training as training

    ds = _tiny_folder(tmp_path)
    model = iqabench.get_model("dbcnn", weights="random", crop_size=0)
    recipe = replace(model.recipe("quick"), crop=48, batch_size=5)
    fc_only = replace(recipe, extra={**recipe.extra, "phases": recipe.extra["phases"][:1]})
    before = {k: v.clone() for k, v in model.named_parameters()}
    training.train_model(model, ds, fc_only, seed=0, progress=False)
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed == {"net.fc.weight", "net.fc.bias"}
    assert all(p.requires_grad for p in model.parameters())  # frozen only during the phase
    summary = training.train_model(model, ds, recipe, seed=0, progress=False)
    assert summary["epochs"] == 2 and len(summary["loss_history"]) == 2
    assert {k for k, v in model.named_parameters() if not torch.equal(v, before[k])} > changed

    hyper = iqabench.get_model("hyperiqa", weights="random")
    groups = training._param_groups(hyper, hyper.recipe("paper"))
    lrs = {g["lr"]: len(g["params"]) for g in groups}
    # HyperIQA's code (and the BAIQA release) puts the ResNet and its local-distortion-aware (LDA)
    # layers in the backbone group (self.res) at lr; the hyper network is the rest, at 10 x lr
    n_backbone = sum(1 for n, _ in hyper.named_parameters() if n.startswith(("net.base_model.", "net.lda_modules.")))
    def count(lr):  # parameters whose group has learning rate ``lr``
        return sum(n for group_lr, n in lrs.items() if group_lr == pytest.approx(lr))

    assert count(2e-5) == n_backbone and count(2e-4) > 0
