"""ImageNet-initialised training: the zoo's recipes start from the backbone
of the model's paper when it is on disk (or can be fetched), record it in
the model card and in every trained artifact's key, and fall back to random
initialisation -- with a warning naming the missing file -- when it cannot
be had.  The "ImageNet" file here is a fake made in the test (a torchvision
ResNet-50 with seeded random weights), named as torchvision names its files
(``resnet50-<sha256 prefix>.pth``) and cached where torchvision keeps them.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture
def fake_imagenet(tmp_path, monkeypatch):
    """A cached fake ImageNet ResNet-50 that hyperiqa's recipes start from."""
    import torchvision

    from iqabench_plugins.zoo import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    torch.manual_seed(123)
    state = torchvision.models.resnet50(weights=None).state_dict()
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # as the 2017 file
    folder = tmp_path / "torch-home" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    staging = folder / "staging.pth"
    torch.save(state, staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    name = f"resnet50-{digest[:8]}.pth"
    staging.rename(folder / name)
    monkeypatch.setitem(weights.BACKBONES, "hyperiqa",
                        lambda p: [weights.Backbone(name, "base_model", source="test")])
    return {"name": name, "sha256": digest, "state": state, "path": folder / name}


def test_training_starts_from_the_cached_backbone(fake_imagenet):
    from iqabench.models.build import start_identity, training_start

    model = training_start("hyperiqa", seed=0)
    expected = f"imagenet ({fake_imagenet['name']}, sha256:{fake_imagenet['sha256']})"
    assert model.backbone == expected and start_identity(model) == {"backbone": expected}
    own = model.net.base_model.state_dict()
    for key in ("conv1.weight", "layer4.2.bn3.running_var", "layer2.0.downsample.0.weight"):
        assert torch.equal(own[key], fake_imagenet["state"][key]), key
    # everything else keeps the seeded random initialisation a plain random build has
    from iqabench.models.build import build_model

    plain = build_model("hyperiqa", None, "random", seed=0).state_dict()
    rest = [k for k in plain if not k.startswith("net.base_model.")]
    assert rest and all(torch.equal(model.state_dict()[k], plain[k]) for k in rest)
    assert not torch.equal(plain["net.base_model.conv1.weight"], own["conv1.weight"])


def test_without_the_backbone_training_is_random_with_a_warning(tmp_path, monkeypatch, capsys):
    """Offline and not cached: random initialisation, said once, and the
    trained artifact keeps the key it had before backbones existed."""
    from iqabench.artifacts import config_key
    from iqabench.contracts import TrainRecipe
    from iqabench.models.build import start_identity, training_start
    from iqabench.models.trained import trained_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    model = training_start("hyperiqa", seed=0)
    err = capsys.readouterr().err.replace("\n", " ")
    assert model.backbone == "random" and start_identity(model) == {}
    assert "RANDOM backbone" in err and "resnet50-19c8e357.pth" in err and "iqabench fetch hyperiqa --backbones" in err

    class Data:
        name = "d"

        def fingerprint(self):
            return "fp"

    recipe = TrainRecipe(epochs=1, lr=1e-3, batch_size=2, crop=32)
    old = config_key({"model": "hyperiqa", "params": {}, "dataset": "fp", "recipe": {**recipe.__dict__}, "seed": 0})
    assert trained_path("hyperiqa", {}, Data(), recipe, 0).stem.endswith(old)
    assert trained_path("hyperiqa", {}, Data(), recipe, 0, start={"backbone": "imagenet (x)"}).stem != \
        trained_path("hyperiqa", {}, Data(), recipe, 0).stem


def _tiny_folder(root: Path, n_train: int = 8, n_test: int = 4, side: int = 200) -> Path:
    rng = np.random.default_rng(0)
    rows = ["name,mos,split"]
    for i in range(n_train + n_test):
        base = rng.uniform(0, 255, (side // 8, side // 8, 3))
        img = np.kron(base, np.ones((8, 8, 1))) + rng.normal(0, 4 * (i % 4), (side, side, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"im{i}.png")
        rows.append(f"im{i}.png,{20 + 5 * i},{'train' if i < n_train else 'test'}")
    (root / "meta.csv").write_text("\n".join(rows) + "\n")
    return root


def test_iqabench_train_hyperiqa_quick_records_the_backbone_in_its_card(fake_imagenet, tmp_path, invoke):
    """``iqabench train --model hyperiqa --profile quick`` picks the cached
    backbone up and its card says which file, with its sha256 (a 12-image
    folder dataset keeps the ResNet-50 training to two steps)."""
    data = tmp_path / "data"
    data.mkdir()
    _tiny_folder(data)
    out = tmp_path / "hyperiqa.safetensors"
    result = invoke(["train", "--model", "hyperiqa", "--dataset", "folder", "--dataset-param", f"root={data}",
                     "--dataset-param", "csv=meta.csv", "--profile", "quick", "--output", str(out)])
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".card.json").read_text())
    assert card["backbone"] == f"imagenet ({fake_imagenet['name']}, sha256:{fake_imagenet['sha256']})"


def test_the_board_flags_rows_trained_from_a_random_backbone(tmp_path):
    """Adversarial and backdoor rows whose model trained from a random backbone
    (the summary's ``backbone``) are marked, and are rows of their own."""
    from iqabench.board.adversarial import adversarial_table
    from iqabench.board.backdoor import backdoor_table
    from iqabench.run.store import Store

    store = Store(tmp_path / "s.sqlite")
    backbones = {"a": "random", "b": "imagenet (resnet50-19c8e357.pth, sha256:19c8e357)", "c": None}
    for key, backbone in backbones.items():
        extra = {"backbone": backbone} if backbone else {}
        cfg = {"kind": "adversarial", "model": {"name": "hyperiqa", "params": {}, "weights": f"{key}.safetensors"},
               "dataset": {"name": "d", "split": "test", "limit": 0}, "attack": {"name": "ifgsm", "params": {}},
               "defense": None, "seed": 0}
        store.start_cell(key, "adversarial", cfg, "run")
        store.finish_cell(key, {"n": 1, "score_range": [0.0, 1.0], **extra})
        cfg = {"kind": "backdoor", "victim": "backdoored", "seed": 0, "defense": None,
               "model": {"name": "hyperiqa", "recipe_profile": "quick"}, "dataset": {"name": "d", "split": "test"},
               "trigger": {"name": "uap-dct"}, "attack": {"name": "baiqa-x", "label_mode": "poison"}, "delta_max": 40.0}
        store.start_cell("bd" + key, "backdoor", cfg, "run")
        store.finish_cell("bd" + key, {"label_mode": "poison", "n": 10, "n_triggered": 4, "mmra": 0.5, **extra})
    weights = dict(zip(adversarial_table(store)["cell"], adversarial_table(store)["weights"]))
    assert weights == {"a": "a.safetensors [random backbone]", "b": "b.safetensors", "c": "c.safetensors"}
    assert sorted(backdoor_table(store)["model"]) == ["hyperiqa", "hyperiqa [random backbone]"]
    # the entry cards: the flag on the random-backbone weights' card only
    from iqabench.board.entries import entry_cards

    flags = {c["weights"]: c["flags"] for c in entry_cards(store) if c["weights"].endswith(".safetensors")}
    assert flags == {"a.safetensors": ["random-backbone"], "b.safetensors": [], "c.safetensors": []}


def _publisher_state(file: str) -> dict:
    """A state dict in the layout of ``file``'s publisher, from the publisher's
    own architecture (random weights): torchvision, timm or pyiqa's S-CNN."""
    import timm
    import torchvision

    if file.endswith(".safetensors"):  # timm's hub weights: "<arch>.<tag>.safetensors"
        return timm.create_model(file.split(".")[0], pretrained=False).state_dict()
    if file.startswith("DBCNN_scnn"):
        from iqabench_plugins.zoo.offline import import_pyiqa_module

        return import_pyiqa_module("pyiqa.archs.dbcnn_arch").SCNN().state_dict()
    return getattr(torchvision.models, file.split("-")[0])(weights=None).state_dict()


@pytest.mark.parametrize("name", [pytest.param("maniqa", marks=pytest.mark.slow), "hyperiqa", "dbcnn", "tres",
                                  "topiq_nr", "nima"])
def test_each_declared_backbone_fits_its_network(name):
    """Every backbone file the zoo declares, in its publisher's layout,
    initialises the declared submodule completely (nothing left random)."""
    from iqabench.models.build import build_model
    from iqabench_plugins.zoo import weights

    model = build_model(name, None, "random")
    declared = weights.BACKBONES[name](weights.full_params(model.spec, model.arch_params))
    assert declared
    for b in declared:
        state = {k: v + 1 if v.is_floating_point() else v for k, v in _publisher_state(b.file).items()}
        module = model.net.get_submodule(b.module)
        weights.copy_into(module, state, b.prefix, b.file)
        for key, value in module.state_dict().items():
            if not key.endswith("num_batches_tracked"):
                assert torch.equal(value, state[b.prefix + key]), (b.file, key)


def test_a_run_of_a_model_trained_from_a_random_backbone_says_so_everywhere(tmp_path, invoke):
    """The card's ``backbone`` reaches the cell's manifest entry, its summary
    and its leaderboard row (here: the shipped cnniqa weights with a card
    that says ``backbone: random``)."""
    import shutil

    from iqabench.models.build import build_model, card_path

    shipped = Path(build_model("cnniqa").pretrained_weights())
    weights = tmp_path / "cnniqa-copy.safetensors"
    shutil.copy(shipped, weights)
    card = json.loads(card_path(shipped).read_text())
    card_path(weights).write_text(json.dumps({**card, "backbone": "random"}))
    store, board = tmp_path / "s.sqlite", tmp_path / "board"
    result = invoke(["run", "--model", "cnniqa", "--weights", str(weights), "--attack", "fgsm", "--limit", "2",
                     "--store", str(store), "--leaderboard", str(board), "--quiet"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(next((tmp_path / "manifests").glob("*.json")).read_text())
    assert [c["backbone"] for c in manifest["cells"]] == ["random"]
    assert manifest["weights_files"][str(weights.resolve())] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert "cnniqa-copy.safetensors" in (board / "adversarial.csv").read_text()
    assert "[random backbone]" in (board / "adversarial.csv").read_text()


def test_a_changed_backbone_file_is_an_error_not_a_random_start(fake_imagenet):
    from iqabench.errors import WeightsError
    from iqabench.models.build import training_start

    path = fake_imagenet["path"]
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(WeightsError, match=fake_imagenet["name"]) as err:
        training_start("hyperiqa")
    assert "\n" not in str(err.value)
