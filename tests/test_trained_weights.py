"""The weights form ``trained:seed=N[,profile=P]``: the model iqabench trains
with its recipe on the cell's dataset -- the file ``iqabench train`` writes,
trained once and cached, loaded like any weights file -- so a suite (the
transfer matrix's) names trained models without weights files on disk."""
import pytest

from iqabench.artifacts import file_digest
from iqabench.contracts import CellSpec
from iqabench.run.runner import Runner, open_run

from models_for_tests import Registers, TinyConvIQA, TinyData

DATA = TinyData.make(n_train=8, n_test=6)


@pytest.fixture
def tiny(plugin, tmp_path, monkeypatch):
    """A tiny trainable model and dataset, an empty cache, and a count of the trainings."""
    import iqabench.models.trained as trained

    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "cache"))
    plugin(Registers(models=[TinyConvIQA], datasets=[DATA]), "tiny-trained")
    trainings = []
    real = trained.train_and_save

    def counting(*args, **kwargs):
        trainings.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(trained, "train_and_save", counting)
    return trainings


def _cell(weights="trained:seed=3", **kw):
    return CellSpec(**{"model": "test-tiny-cnn", "dataset": "test-tiny-data", "attack": "fgsm", "weights": weights,
                       "attack_params": {"eps": 4 / 255}, **kw})


def _digest(weights_label: str) -> str:
    """The sha256 prefix of a model's ``weights`` label ``name (sha256:...)``."""
    return weights_label.split("(sha256:")[1].rstrip(")")


def test_trained_weights_are_the_file_iqabench_train_writes_trained_once_per_seed(tiny, invoke, tmp_path):
    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    first, other_seed, other_attack = runner.run([_cell(), _cell(seed=1), _cell(attack="ifgsm")])
    assert len(tiny) == 1  # three cells, one training: the others load the cached model
    again = Runner(open_run(tmp_path / "s.sqlite", progress=False, force=True)).run([_cell(seed=2)])[0]
    assert len(tiny) == 1  # a later run reuses the cache as well
    name = first["weights"].split(" (")[0]
    assert name.startswith("test-tiny-cnn-test-tiny-data-") and name.endswith(".safetensors")
    assert other_seed["weights"] == other_attack["weights"] == again["weights"] == first["weights"]
    assert first["model_test"]["split"] == "test" and "srocc" in first["model_test"]  # the trained model's card

    # `iqabench train` with that seed writes the same weights, byte for byte
    out = tmp_path / "by-train.safetensors"
    result = invoke(["train", "--model", "test-tiny-cnn", "--dataset", "test-tiny-data", "--seed", "3",
                     "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert file_digest(out) == _digest(first["weights"])
    cached = invoke(["train", "--model", "test-tiny-cnn", "--dataset", "test-tiny-data", "--seed", "3"])
    assert f"weights: {tmp_path / 'cache' / 'models' / name}" in cached.output  # the very file the cell loaded
    assert len(tiny) == 2  # only the --output run trained

    # another seed is another model
    seed4 = runner.run([_cell("trained:seed=4")])[0]
    assert len(tiny) == 3 and _digest(seed4["weights"]) != _digest(first["weights"])


def test_a_transfer_source_with_trained_weights_is_trained_on_the_cells_dataset(tiny, tmp_path):
    from iqabench.experiments.adversarial import AdversarialExperiment
    from iqabench.models.trained import train_cached
    from iqabench.contracts import RunContext
    from iqabench.registry import build_attack

    spec = _cell("random", transfer_from={"model": "test-tiny-cnn", "model_params": {}, "weights": "trained:seed=3"})
    ctx = RunContext(progress=False)
    cell = AdversarialExperiment().plan(spec, build_attack("fgsm", spec.attack_params), ctx)[0]
    expected = train_cached(("test-tiny-cnn", {}), ("test-tiny-data", {}), RunContext(seed=3, progress=False))
    assert expected["cached"] and len(tiny) == 1
    assert cell.config["transfer_from"]["weights"] == f'{expected["path"].name} (sha256:{file_digest(expected["path"])})'
    assert cell.config["model"]["weights"].startswith("random-init")


@pytest.mark.parametrize("args,message", [
    (["--weights", "trained:seed=x"], "--weights trained:seed=x: seed must be an integer"),
    (["--weights", "trained:seed=1,profil=quick"], "--weights trained:seed=1,profil=quick: unknown key 'profil'"),
    (["--weights", "trained:profile=quick"], "--weights trained:profile=quick: seed is missing"),
    (["--transfer-from", "test-tiny-cnn@trained:seed=1.5"],
     "--transfer-from test-tiny-cnn@trained:seed=1.5: seed must be an integer"),
])
def test_a_malformed_trained_form_is_one_line_naming_it(tiny, invoke, tmp_path, args, message):
    result = invoke(["run", "--model", "test-tiny-cnn", "--dataset", "test-tiny-data", "--attack", "fgsm",
                     "--store", str(tmp_path / "s.sqlite"), "--no-leaderboard", "-q", *args])
    assert result.exit_code != 0
    errors = [line for line in result.output.strip().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {message}"), result.output
    assert "Traceback" not in result.output
    assert not tiny  # named before anything was trained


def test_a_suite_with_a_malformed_trained_form_names_the_suite(tiny, tmp_path):
    from iqabench.errors import SuiteError
    from iqabench.run.plan import validate_cell
    from iqabench.run.suite import expand, load_suite_text

    text = 'models = ["test-tiny-cnn"]\ndatasets = ["test-tiny-data"]\nattacks = ["fgsm"]\nweights = "trained:seed=x"\n'
    with pytest.raises(SuiteError, match=r"s\.toml: --weights trained:seed=x: seed must be an integer"):
        expand(load_suite_text(text, "s.toml"), "s.toml", check=validate_cell)


def test_build_model_refuses_the_trained_form_without_a_dataset():
    from iqabench.errors import WeightsError
    from iqabench.models.build import build_model

    with pytest.raises(WeightsError, match="trained:seed=1: a trained model needs the dataset"):
        build_model("cnniqa", {}, "trained:seed=1")


def test_a_post_training_defence_starts_from_the_trained_model(tiny, tmp_path):
    """Pruning a `trained:seed=N` cell prunes the trained model (its card's start is that file), and the
    undefended baseline the run adds beside it loads the same file: one training."""
    import json

    from iqabench.artifacts import cache_dir

    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    pruned, = [s for s in runner.run([_cell(defense="prune", defense_params={"rate": 0.5})])
               if s["spec"]["defense"] == "prune"]
    assert len(tiny) == 1
    trained_file, = cache_dir("models").glob("*.safetensors")
    card, = [json.loads(p.read_text()) for p in cache_dir("defended").glob("*.card.json")]
    assert card["start"]["weights"] == f"{trained_file.name} (sha256:{file_digest(trained_file)})"


def test_planning_ships_the_trained_model_to_the_steps_that_wait_for_it(tiny, tmp_path, monkeypatch):
    """An executor that plans on workers without a shared cache (Ray): the step
    that trains the model returns its files, and a step on another node that
    waits for it (:mod:`iqabench.run.graph`) gets them and trains nothing."""
    from iqabench.run import worker

    monkeypatch.setattr(worker, "_CONTEXTS", {})
    first = worker.prepare(_cell(), "cpu", {})
    weights = first["cells"][0]["config"]["model"]["weights"]
    name = weights.split(" (")[0]
    assert {k for k in first["files"] if k.startswith("models/")} == {
        f"models/{name}", f"models/{name.removesuffix('.safetensors')}.card.json"}
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "other-node"))
    monkeypatch.setattr(worker, "_CONTEXTS", {})  # another worker process
    source = {"model": "test-tiny-cnn", "model_params": {}, "weights": "trained:seed=3"}
    second = worker.prepare(_cell("random", seed=1, transfer_from=source), "cpu", first["files"])
    assert len(tiny) == 1 and second["cells"][0]["config"]["transfer_from"]["weights"] == weights


def test_cells_that_need_one_trained_model_plan_after_the_one_that_trains_it(tiny):
    """Whatever their seed, defence or role (attacked model or transfer source): one trains, the others wait."""
    from iqabench.run.graph import steps

    source = {"model": "test-tiny-cnn", "model_params": {}, "weights": "trained:seed=3"}
    graph = steps([_cell(), _cell(seed=1), _cell(defense="prune", defense_params={"rate": 0.5}),
                   _cell("random", seed=2, transfer_from=source), _cell("trained:seed=4", seed=1)])
    assert [0 in s.deps for s in graph[1:]] == [True, True, True, False]  # seed 4 is another model


def test_the_board_names_a_trained_model_by_the_form_that_made_it(tiny, tmp_path):
    """A trained model's file name (a cache key) says nothing about how it was made: the
    board shows ``trained:seed=N: <file>`` wherever it labels that model."""
    import pandas as pd

    from iqabench.board.page import render

    source = {"model": "test-tiny-cnn", "model_params": {}, "weights": "trained:seed=3"}
    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    white, target, crafted = runner.run([_cell(), _cell("trained:seed=4"), _cell("trained:seed=4", transfer_from=source)])
    render(runner.store, tmp_path / "board")
    table = pd.read_csv(tmp_path / "board" / "adversarial.csv")
    assert sorted(table["weights"]) == sorted([f"trained:seed=3: {white['weights']}"]
                                              + [f"trained:seed=4: {target['weights']}"] * 2)
    transfer = pd.read_csv(tmp_path / "board" / "transfer.csv")
    file3, file4 = (w["weights"].split(" (")[0] for w in (white, crafted))
    assert set(transfer["source"]) == {f"test-tiny-cnn [trained:seed=3: {file3}]", f"test-tiny-cnn [trained:seed=4: {file4}]"}
    assert set(transfer["target"]) == {f"test-tiny-cnn [trained:seed=4: {file4}]"}
