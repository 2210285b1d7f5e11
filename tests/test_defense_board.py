"""Like-for-like defence rows: every defended cell runs beside its baseline, several
seeds are one row with their spread, and a sweep of a training-time defence gets a
trade-off plot -- checked against the per-cell summaries in the store."""
import json
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest

from iqabench.run.plan import with_baselines
from iqabench.contracts import CellSpec
from test_defenses import TinyPlugin


def test_with_baselines_adds_each_missing_baseline_once_before_its_first_user():
    nt1 = CellSpec("m", "d", "fgsm", seed=1, defense="nt", defense_params={"lam": 0.1, "epochs": 2})
    nt2 = CellSpec("m", "d", "fgsm", seed=1, defense="nt", defense_params={"lam": 0.2, "epochs": 2})
    prune = CellSpec("m", "d", "fgsm", seed=1, defense="prune", defense_params={"rate": 0.4})
    out = with_baselines([nt1, nt2, prune])
    assert [(c.defense, c.defense_params) for c in out] == [
        ("nt", {"lam": 0.0, "epochs": 2}), ("nt", nt1.defense_params), ("nt", nt2.defense_params),
        ("none", {}), ("prune", {"rate": 0.4})]
    assert all(c.seed == 1 and c.attack == "fgsm" for c in out)  # same seed, images and attack
    # present already (in any spelling that resolves to the same parameters): not added again
    spelled = CellSpec("m", "d", "fgsm", seed=1, defense="nt", defense_params={"lam": 0, "epochs": 2})
    assert with_baselines([spelled, nt1]) == [spelled, nt1]
    # another seed is another baseline
    assert len(with_baselines([nt1, CellSpec("m", "d", "fgsm", seed=2, defense="nt",
                                             defense_params=nt1.defense_params)])) == 4


SUITE = """
models = ["test-tiny-cnn"]
datasets = ["test-tiny-data"]
attacks = ["fgsm"]
seeds = [0, 1]
[[grid]]
defenses = ["nt"]
defense_params.nt = { lam = 0.01 }
[[grid]]
defenses = ["nt"]
defense_params.nt = { lam = 0.1 }
"""


def test_seeds_are_one_row_with_their_spread_and_a_sweep_gets_its_tradeoff_plot(invoke, plugin, tmp_path):
    plugin(TinyPlugin(), "tiny-board-plugin")
    suite = tmp_path / "sweep.toml"
    suite.write_text(SUITE)
    store, board = tmp_path / "s.sqlite", tmp_path / "board"
    result = invoke(["run", "--suite", str(suite), "--store", str(store), "--leaderboard", str(board), "-q"])
    assert result.exit_code == 0, result.output

    db = sqlite3.connect(store)
    per_cell: dict[float, list[dict]] = {}
    by_seed: dict[tuple, tuple] = {}
    for config, summary in db.execute("SELECT config, summary FROM cells WHERE status = 'done'"):
        config, summary = json.loads(config), json.loads(summary)
        lam = config["defense"]["params"]["lam"]
        per_cell.setdefault(lam, []).append(summary)
        by_seed[(lam, config["seed"])] = (config, summary)
    assert sorted(per_cell) == [0.0, 0.01, 0.1] and all(len(v) == 2 for v in per_cell.values())  # baseline added
    for (lam, seed), (config, summary) in by_seed.items():  # one scale per defended row and its baseline
        base_config, base_summary = by_seed[(0.0, seed)]
        assert summary["score_range"] == base_summary["score_range"]
        assert config["defense"]["normalised_by"] == base_config["model"]

    long = pd.read_csv(board / "defenses.csv")
    for lam, label in ((0.0, "nt lam=0"), (0.01, "nt lam=0.01"), (0.1, "nt lam=0.1")):
        row = long[long["defense"] == label].iloc[0]
        rmse = np.array([s["score_rmse"] for s in per_cell[lam]])
        assert row["seeds"] == 2
        assert row["score_rmse"] == pytest.approx(rmse.mean())
        assert row["score_rmse_sd"] == pytest.approx(rmse.std(ddof=1))
        test = np.array([s["model_test"]["srocc"] for s in per_cell[lam]])
        assert row["test_srocc"] == pytest.approx(test.mean())
        assert (row["baseline"] if isinstance(row["baseline"], str) else "") == ("" if lam == 0 else "nt lam=0")
    assert per_cell[0.01][0]["model_test"]["n"] > 0  # the card's whole test split, not the attacked images

    plots = sorted((board / "defenses").glob("*-tradeoff-*.svg"))
    assert len(plots) == 1 and plots[0].stat().st_size > 1000
    readme = (board / "defenses.md").read_text()
    assert f"defenses/{plots[0].name}" in readme and "± " in readme
    # the site's defences page: a heatmap per matrix, each square annotated with its mean over seeds
    for metric in ("score_rmse", "robustness"):
        heatmap = (board / "defenses" / f"test-tiny-data_test-{metric}-heatmap.svg").read_text()
        for lam in (0.0, 0.01, 0.1):
            assert f">{np.mean([s[metric] for s in per_cell[lam]]):.3g}<" in heatmap
        assert f'src="defenses/test-tiny-data_test-{metric}-heatmap.svg"' in (board / "defenses.html").read_text()
    assert 'src="defenses/test-tiny-data_test-clean-vs-robustness.svg"' in (board / "defenses.html").read_text()
    # every number of the matrices links to a cell of its row (the first seed's)
    keys = {json.loads(c)["defense"]["params"]["lam"]: k for k, c in db.execute("SELECT key, config FROM cells")}
    linked = re.findall(r'<a href="cells/(\w+)\.html">', (board / "defenses.html").read_text())
    assert set(linked) <= {k for (k,) in db.execute("SELECT key FROM cells")} and len(set(linked)) == 3
    assert {json.loads(db.execute("SELECT config FROM cells WHERE key = ?", (k,)).fetchone()[0])["defense"]["params"]
            ["lam"] for k in set(linked)} == set(keys)


def test_no_baselines_runs_only_the_cells_asked_for(invoke, plugin, tmp_path):
    plugin(TinyPlugin(), "tiny-board-plugin-2")
    store = tmp_path / "s.sqlite"
    result = invoke(["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "-a", "fgsm", "--defense", "nt",
                     "--defense-param", "lam=0.01", "--no-baselines", "--store", str(store), "--no-leaderboard", "-q"])
    assert result.exit_code == 0, result.output
    lams = [json.loads(c)["defense"]["params"]["lam"] for (c,) in sqlite3.connect(store).execute("SELECT config FROM cells")]
    assert lams == [0.01]


ROWS_SUITE = """
models = ["test-tiny-cnn"]
datasets = ["test-tiny-data"]
attacks = ["fgsm"]
[[grid]]
defenses = ["none", "finetune"]
limit = 4
[[grid]]
defenses = ["none"]
[[grid]]
weights = "trained:seed=1"
[[grid]]
model_params.test-tiny-cnn = { filters = 4 }
[[grid]]
defenses = ["nt"]
defense_params.nt = { lam = 0 }
seeds = [0, 1]
[[grid]]
defenses = ["nt"]
defense_params.nt = { lam = 0.01 }
"""
TRANSFER_SUITE = """
models = ["test-tiny-cnn"]
datasets = ["test-tiny-data"]
attacks = ["fgsm"]
transfer = "matrix"
[model_params.test-tiny-cnn]
filters = [8, 4]
"""


def test_a_matrix_row_never_averages_two_models_weights_subsets_or_unshared_seeds(plugin, tmp_path):
    """The `none` row of cnniqa once averaged the default suite's 48-image cells with the
    defence matrix's 24-image ones, and would have averaged other models of the same name
    (another architecture, other weights, transfer twins) into it: every row is checked here
    against the store's own per-cell summaries."""
    from iqabench.board.page import render
    from iqabench.run.plan import validate_cell
    from iqabench.run.runner import Runner, open_run
    from iqabench.run.suite import expand, load_suite_text

    plugin(TinyPlugin(), "tiny-rows-plugin")
    cells = [c for text in (ROWS_SUITE, TRANSFER_SUITE)
             for c in expand(load_suite_text(text, "s.toml"), "s.toml", check=validate_cell)]
    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    runner.run(cells)
    board = tmp_path / "board"
    render(runner.store, board)
    done = [c for c in runner.store.cells(status="done")]

    def summaries(pick):
        return [c["summary"] for c in done if pick(c["config"])]

    def plain(cfg):
        return not cfg.get("transfer_from") and not cfg.get("defense")

    m = pd.read_csv(board / "defense_matrix.csv", keep_default_na=False)
    undefended = m[m["defense"] == "none"]
    # four undefended rows: default on all images, default on 4, narrow, the seed-1 trained weights
    assert len(undefended) == 4, undefended.to_dict("records")
    assert set(undefended["images"]) == {"all", "4 stratified-v1"}
    assert {"test-tiny-cnn", "test-tiny-cnn filters=4"} == set(undefended["model"])
    for _, r in undefended.iterrows():
        narrow = r["model"].endswith("filters=4")
        picked = summaries(lambda cfg: plain(cfg) and (cfg["model"]["params"]["filters"] == 4) == narrow
                           and str(cfg["model"]["weights"]).split(" (")[0] in r["origin"]
                           and (cfg["dataset"]["limit"] == 4) == (r["images"] != "all"))
        assert len(picked) == 1, r.to_dict()  # one cell per row: nothing averaged in
        assert float(r["fgsm"]) == pytest.approx(picked[0]["score_rmse"])
        assert r["seeds"] == 1
    # fine-tuning sits on its start model's 4-image row, not on the all-images one
    ft = m.index[m["defense"].str.startswith("finetune")][0]
    assert m.loc[ft - 1, "defense"] == "none" and m.loc[ft - 1, "images"] == m.loc[ft, "images"] == "4 stratified-v1"
    # transfer twins are no columns of the defence matrix
    assert [c for c in m.columns if "[from" in c] == []
    # like for like: NT at lam=0.01 ran on seed 0 only, its baseline on 0 and 1 -> the baseline again on seed 0
    nt = m[m["defense"].str.startswith("nt")]
    assert list(zip(nt["defense"], nt["seed_list"].astype(str))) == [
        ("nt lam=0", "0,1"), ("nt lam=0", "0"), ("nt lam=0.01", "0")]
    base0 = summaries(lambda cfg: (cfg.get("defense") or {}).get("params", {}).get("lam") == 0 and cfg["seed"] == 0)
    assert float(nt.iloc[1]["fgsm"]) == pytest.approx(base0[0]["score_rmse"])
    both = summaries(lambda cfg: (cfg.get("defense") or {}).get("params", {}).get("lam") == 0)
    assert float(nt.iloc[0]["fgsm"]) == pytest.approx(np.mean([s["score_rmse"] for s in both]))
