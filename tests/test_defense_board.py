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
