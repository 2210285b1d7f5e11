"""Transfer attacks: crafted on one model, scored on another; the suite's
transfer matrix, whose diagonal is the white-box cells."""
import pytest
import torch

from iqabench.contracts import CellSpec
from iqabench.run.plan import validate_cell
from iqabench.run.runner import Runner, open_run
from iqabench.run.suite import expand, load_suite_text

from models_for_tests import LinearScore, Registers, TinyData

SUITE = """
models = ["test-linear"]
datasets = ["test-tiny-data"]
attacks = ["fgsm"]
weights = "random"
transfer = "matrix"
[model_params.test-linear]
seed = [0, 1]
size = 16
[params.fgsm]
eps = "8/255"
"""


@pytest.fixture
def linear(plugin):
    data = TinyData.make(n_train=4, n_test=6, size=16)
    plugin(Registers(models=[LinearScore], datasets=[data]), "linear")
    return data


def test_the_matrix_diagonal_is_the_white_box_cells_and_off_diagonal_the_closed_form(linear, tmp_path):
    cells = expand(load_suite_text(SUITE, "s.toml"), "s.toml", check=validate_cell)
    src = [None if c.transfer_from is None else c.transfer_from["model_params"]["seed"] for c in cells]
    assert [(c.model_params["seed"], s) for c, s in zip(cells, src)] == [(0, None), (0, 1), (1, None), (1, 0)]
    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    summaries = runner.run(cells)
    # the diagonal asked for explicitly is the white-box cell: same key, same numbers
    white = cells[0]
    diag = CellSpec(**{**white.__dict__, "transfer_from": {"model": "test-linear", "model_params": {"seed": 0, "size": 16},
                                                           "weights": "random"}})
    again = Runner(open_run(tmp_path / "s.sqlite", progress=False)).run([diag])[0]
    assert again == summaries[0]
    from iqabench.experiments.adversarial import AdversarialExperiment
    from iqabench.registry import build_attack

    plan = lambda spec: AdversarialExperiment().plan(spec, build_attack("fgsm", spec.attack_params), runner.ctx)[0]
    assert plan(diag).key == plan(white).key and "transfer_from" not in plan(white).config
    assert plan(cells[1]).key != plan(white).key and plan(cells[1]).config["transfer_from"]["params"]["seed"] == 1
    # off the diagonal: x + eps * sign(w_source), clamped, scored by w_target
    data = linear()
    x = torch.stack([data.load(it) for it in data.items("test")])
    w = {s: LinearScore(seed=s, size=16).w.detach() for s in (0, 1)}
    for summary, (target, source) in zip(summaries, [(0, 0), (0, 1), (1, 1), (1, 0)]):
        adv = (x + 8 / 255 * w[source].sign()).clamp(0, 1)
        gain = ((w[target] * (adv - x)).flatten(1).sum(1)).mean()
        assert summary["abs_gain"] == pytest.approx(float(gain), rel=1e-4)
    assert summaries[1]["abs_gain"] < summaries[0]["abs_gain"]  # white-box beats transfer


def test_transfer_is_in_the_key_and_backdoors_cannot_transfer(linear):
    from iqabench.errors import IQABenchError

    spec = CellSpec(model="cnniqa", dataset="embedded", attack="baiqa-p", transfer_from={"model": "cnniqa"})
    with pytest.raises(IQABenchError, match="cannot transfer"):
        validate_cell(spec)


def test_the_transfer_suite_is_a_3x3_matrix_per_attack_over_the_models_of_all_its_grids():
    """The registered `transfer` suite: the default model and two CNNIQA models iqabench
    trains (`trained:seed=1`; narrow, `trained:seed=0`), each grid one model -- the
    matrix spans the models of every grid: 3 models x 2 attacks x 3 sources = 18
    cells, the diagonal the white-box cells.  Expanded and planned as a graph, never run."""
    from iqabench.run.graph import steps
    from iqabench.run.plan import wildcard_attacks
    from iqabench.run.suite import load_suite

    data, text = load_suite("transfer")
    cells = expand(data, "transfer", wildcard_attacks, validate_cell)
    model = lambda m: (m["model"], tuple(sorted(m["model_params"].items())), m["weights"])
    models = {("cnniqa", (), "default"), ("cnniqa", (), "trained:seed=1"),
              ("cnniqa", (("filters", 16), ("hidden", 200)), "trained:seed=0")}
    target = lambda c: model({"model": c.model, "model_params": c.model_params, "weights": c.weights})
    source = lambda c: target(c) if c.transfer_from is None else model(c.transfer_from)
    assert len(cells) == 18
    assert {(target(c), c.attack, source(c)) for c in cells} == {
        (t, a, s) for t in models for a in ("fgsm", "ifgsm") for s in models}
    white = [c for c in cells if c.transfer_from is None]
    assert len(white) == 6 and {(target(c), c.attack) for c in white} == {(t, a) for t in models
                                                                        for a in ("fgsm", "ifgsm")}
    assert all(c.dataset == "embedded" and c.split == "test" and c.limit == 48 and c.attack_params == {}
               for c in cells)
    # each trained model is built by one planning step, which every other step that needs it waits for
    graph = steps(cells)
    for form in ("trained:seed=1", "trained:seed=0"):
        users = [s.index for s in graph if form in (s.spec.weights, (s.spec.transfer_from or {}).get("weights"))]
        assert len(users) == 10 and all(users[0] in graph[i].deps for i in users[1:]), (form, users)
    # and the published board runs it
    board, _ = load_suite("leaderboard")
    assert "transfer" in board["include"]
    everything = {repr(sorted(c.__dict__.items())) for c in expand(board, "leaderboard", wildcard_attacks)}
    assert {repr(sorted(c.__dict__.items())) for c in cells} <= everything
