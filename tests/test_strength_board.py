"""The attack-strength section of the board: query curves, ladders, the
transfer heatmap and the gain before/after JPEG, from a store of tiny cells."""
import pandas as pd
import pytest

from iqabench.board.page import render
from iqabench.run.plan import validate_cell
from iqabench.run.runner import Runner, open_run
from iqabench.run.suite import expand, load_suite_text

from models_for_tests import LinearScore, Registers, TinyData

SUITE = """
models = ["test-linear"]
datasets = ["test-tiny-data"]
attacks = ["fgsm", "square-attack"]
weights = "random"
transfer = "matrix"
jpeg_quality = [0, 10]
[model_params.test-linear]
seed = [0, 1]
size = 16
[params.fgsm]
eps = ["2/255", "8/255"]
[params.square-attack]
eps = "8/255"
queries = 12
"""


def test_the_strength_section_has_curves_ladders_transfer_and_jpeg(plugin, tmp_path):
    plugin(Registers(models=[LinearScore], datasets=[TinyData.make(n_train=2, n_test=4, size=16)]), "linear")
    cells = expand(load_suite_text(SUITE, "s.toml"), "s.toml", check=validate_cell)
    assert len(cells) == 2 * 3 * 2 * 2  # models x (2 fgsm + square) x jpeg x (white-box + one source)
    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    runner.run(cells)
    board = tmp_path / "board"
    render(runner.store, board)
    by_key = {c["key"]: c for c in runner.store.cells()}

    curves = pd.read_csv(board / "query_curves.csv")
    assert set(curves["attack"]) == {"square-attack"} and curves.groupby("cell")["queries"].max().eq(12).all()
    for key, g in curves.groupby("cell"):  # a white-box, float-scored cell's own summary curve
        assert g["abs_gain"].iloc[-1] == pytest.approx(by_key[key]["summary"]["abs_gain"], abs=1e-6)

    ladders = pd.read_csv(board / "ladders.csv")
    assert set(ladders["param"]) == {"eps"} and len(ladders) == 2 * 2  # two models, two eps each
    assert (ladders.groupby("model")["abs_gain"].diff().dropna() > 0).all()  # more budget, more gain

    transfer = pd.read_csv(board / "transfer.csv")
    for _, r in transfer[transfer["source"] == transfer["target"]].iterrows():  # the diagonal: white-box cells
        cfg = by_key[r["cell"]]["config"]
        assert "transfer_from" not in cfg and "delivery" not in cfg
    assert len(transfer) == 2 * 2 * 3  # per attack setting, a 2 x 2 matrix
    assert len(list((board / "strength").glob("transfer-*.svg"))) == 3

    jpeg = pd.read_csv(board / "jpeg.csv")
    assert len(jpeg) == 2 * 3 and set(jpeg["jpeg_quality"]) == {10}
    assert jpeg["abs_gain_before"].notna().all()
    assert list((board / "strength").glob("*-queries.svg")) and list((board / "strength").glob("*-eps.svg"))
    assert "## Attack strength" in (board / "strength.md").read_text()
    text = (board / "adversarial.md").read_text()
    assert "[JPEG q10]" in text and "[from test-linear" in text


def test_a_universal_perturbation_at_its_amplitudes_is_a_ladder(tmp_path):
    from iqabench.board.strength import ladder_table
    from iqabench.run.store import Store

    store = Store(tmp_path / "s.sqlite")
    base = {"kind": "universal", "model": {"name": "m", "params": {}, "weights": "w"}, "seed": 0,
            "dataset": {"name": "d", "split": "test", "limit": 0}, "defense": None}
    for i, amp in enumerate((0.2, 0.4, 0.8)):
        cfg = {**base, "attack": {"name": "uap", "params": {"eps": 0.1}, "amplitude": amp, "artifact": "a1"}}
        store.start_cell(f"k{i}", "universal", cfg, "run")
        store.finish_cell(f"k{i}", {"abs_gain": amp / 10, "abs_gain_ci": [0, 1], "psnr": 40 - amp, "ssim": 0.9, "n": 4})
    other = {**base, "attack": {"name": "uap", "params": {"eps": 0.1}, "amplitude": 0.2, "artifact": "a2"}}
    store.start_cell("k9", "universal", other, "run")  # another perturbation: not on the same ladder
    store.finish_cell("k9", {"abs_gain": 1.0, "psnr": 30, "ssim": 0.5, "n": 4})
    table = ladder_table(store.cells())
    assert list(table["param"]) == ["amplitude"] * 3 and list(table["value"]) == [0.2, 0.4, 0.8]
    assert list(table["abs_gain"]) == pytest.approx([0.02, 0.04, 0.08])
