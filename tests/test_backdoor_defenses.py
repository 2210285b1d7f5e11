"""Defences against backdoors: `--defense` with a backdoor attack, where the
defence meets the victim (post-training: its weights and clean data;
training-time: its poisoned training), and the backdoor x defence board."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from backdoor_fixtures import TinyNoise, TinyPlugin
from iqabench.contracts import CellSpec, RunContext
from iqabench.data.benign import benign_items
from iqabench.experiments.backdoor import context as backdoor_context
from iqabench.experiments.backdoor import defended_victim, plan_backdoor
from iqabench.models import training
from iqabench.run.store import Store
from iqabench_plugins.backdoor.baiqa import BAIQAPoisonLabel

#: a trigger search and evaluation small enough for a unit test
TINY = dict(profile="quick", search_epochs=1, search_crops=1, search_crop=32, search_batch=16, eval_images=3)


@pytest.fixture
def tiny(plugin):
    plugin(TinyPlugin(), "tiny-backdoor-defense")
    return TinyNoise()


def _plan(dataset):
    attack = BAIQAPoisonLabel(**TINY)
    attack.params = dict(TINY)
    return plan_backdoor(attack, _spec("none"), dataset, RunContext(progress=False))


def _spec(defense: str, **params) -> CellSpec:
    return CellSpec("test-backdoor-cnn", "test-tiny-noise", "baiqa-p", attack_params=dict(TINY), defense=defense,
                    defense_params=params)


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------- the runner
def test_defense_with_a_backdoor_is_a_separate_cell_and_prune_at_zero_is_the_victim(tiny, invoke, tmp_path):
    store_path, board = tmp_path / "s.sqlite", tmp_path / "board"
    base = ["run", "-m", "test-backdoor-cnn", "-d", "test-tiny-noise", "-a", "baiqa-p", "--store", str(store_path),
            "-q", *[f"--param={k}={v}" for k, v in TINY.items()]]
    assert invoke([*base, "--no-leaderboard"]).exit_code == 0
    undefended = {c["key"] for c in Store(store_path).cells(kind="backdoor")}
    result = invoke([*base, "--defense", "none", "--defense", "prune", "--defense-param", "rate=0",
                     "--leaderboard", str(board)])
    assert result.exit_code == 0, result.output
    assert result.output.count("skip") == 2  # the undefended cells keep their keys

    cells = {(c["config"]["victim"], (c["config"]["defense"] or {}).get("name")): c
             for c in Store(store_path).cells(kind="backdoor")}
    assert set(cells) == {("clean", None), ("backdoored", None), ("backdoored", "prune")}  # no defended w/o row
    pruned, victim = cells["backdoored", "prune"], cells["backdoored", None]
    assert pruned["key"] not in undefended and {victim["key"], cells["clean", None]["key"]} == undefended
    assert pruned["config"]["defense"] == {"name": "prune", "params": {"rate": 0.0, "fraction": 0.2},
                                           "kind": "post-training"}
    assert pruned["summary"]["artifact"] != victim["summary"]["artifact"]  # its own cached weights ...
    rows = {k: [(r["name"], r["clean"], r["attacked"]) for r in Store(store_path).images(c["key"])]
            for k, c in (("pruned", pruned), ("victim", victim))}
    assert rows["pruned"] == rows["victim"]  # ... yet pruning nothing predicts exactly like the victim

    table = pd.read_csv(board / "backdoor_defenses.csv")
    assert list(table["defense"]) == ["none", "prune rate=0"]
    assert list(pd.read_csv(board / "backdoor.csv")["trigger"]) == ["w/o (uap-dct)", "uap-dct"]  # Table 1 as before
    assert "## Backdoor x defence" in (board / "backdoor_defenses.md").read_text()
    assert len(list((board / "backdoor").glob("*-pruning-*.svg"))) == 1
    assert len(list((board / "backdoor").glob("*.svg"))) == 3  # two alpha plots (undefended cells) + the curve


def test_a_defended_backdoor_without_a_train_split_is_a_one_line_error(tiny, invoke, tmp_path, monkeypatch):
    monkeypatch.setattr(TinyNoise, "SIZES", {"test": 12})
    result = invoke(["run", "-m", "test-backdoor-cnn", "-d", "test-tiny-noise", "-a", "baiqa-p", "--defense", "prune",
                     "--store", str(tmp_path / "s.sqlite"), "--no-leaderboard", "-q"])
    assert result.exit_code == 1 and "'train' split" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


# ---------------------------------------------------- post-training defences
def test_finetune_starts_from_the_victim_and_sees_only_clean_benign_data(tiny, monkeypatch):
    plan = _plan(tiny)
    victim, _ = plan.train_victim()
    seen = []
    real = training.train_model

    def spy(model, dataset, *a, **k):
        seen.append((_same_weights(model, victim), [it.name for it in dataset.items("train")],
                     all(torch.equal(dataset.load(it), tiny.load(it)) for it in dataset.items("train"))))
        return real(model, dataset, *a, **k)

    monkeypatch.setattr(training, "train_model", spy)
    model, path, defense = defended_victim(plan, _spec("finetune", epochs=1))
    expected = [it.name for it in benign_items(tiny, 0.2, seed=0)]
    assert seen == [(True, expected, True)]  # the victim's weights; the benign 20%, unpoisoned
    assert defense == {"name": "finetune", "params": {"fraction": 0.2, "profile": "default", "epochs": 1},
                       "kind": "post-training"}
    assert path.parent.name == "defended" and not _same_weights(model, victim)
    again, path2, _ = defended_victim(plan, _spec("finetune", epochs=1))
    assert len(seen) == 1 and path2 == path and _same_weights(again, model)  # cached


# ------------------------------------------------------ training-time defence
def test_nt_trains_the_victim_with_its_regulariser_and_zero_weight_is_the_plain_victim(tiny, monkeypatch):
    plan = _plan(tiny)
    plain_trainings = []
    real = backdoor_context.train_model
    monkeypatch.setattr(backdoor_context, "train_model", lambda *a, **k: plain_trainings.append(1) or real(*a, **k))
    zero, _, defense = defended_victim(plan, _spec("nt", lam=0.0))
    strong, _, _ = defended_victim(plan, _spec("nt", lam=1e-3))
    assert plain_trainings == []  # the victim is trained under the defence, not first plainly
    assert defense["kind"] == "training" and defense["params"]["lam"] == 0.0
    victim, _ = plan.train_victim()
    assert _same_weights(zero, victim)  # lam = 0: bit for bit the poisoned victim
    assert not _same_weights(strong, victim)


# ------------------------------------------------------------------ board
def _cell(store, key, defense, mmra, srocc, mode="poison"):
    cfg = {"kind": "backdoor", "victim": "backdoored", "seed": 0, "defense": defense,
           "model": {"name": "m", "recipe_profile": "default"}, "dataset": {"name": "d", "split": "test"},
           "trigger": {"name": "uap-dct"}, "attack": {"name": "baiqa-p", "label_mode": mode}, "delta_max": 40.0}
    store.start_cell(key, "backdoor", cfg, "run")
    store.finish_cell(key, {"label_mode": mode, "n": 10, "n_triggered": 4, "plcc": srocc, "srocc": srocc,
                            "rmse": 5.0, "mmae": 9.0, "mmra": mmra, "psnr": 30.0, "attack": "baiqa-p"})


def test_board_renders_the_backdoor_defense_table_and_the_pruning_curve(tmp_path):
    from iqabench.board.backdoor import render_backdoor
    from iqabench.board.backdoor_defenses import render_backdoor_defenses

    store = Store(tmp_path / "s.sqlite")
    prune = lambda rate: {"name": "prune", "kind": "post-training", "params": {"rate": rate, "fraction": 0.2}}
    _cell(store, "p4", prune(0.4), 0.2, 0.70)
    _cell(store, "v", None, 0.9, 0.80)
    _cell(store, "ft", {"name": "finetune", "kind": "post-training", "params": {"fraction": 0.2, "profile": "quick"}},
          0.5, 0.78)
    _cell(store, "p2", prune(0.2), 0.6, 0.79)
    _cell(store, "other", None, 0.8, 0.8, mode="clean")  # an experiment without a defended cell: Table 1 only
    (table1_md, table1_files), (md, files) = (render(store, tmp_path / "board")
                                              for render in (render_backdoor, render_backdoor_defenses))
    assert table1_md and table1_files
    table = pd.read_csv(tmp_path / "board" / "backdoor_defenses.csv")
    assert list(table["defense"]) == ["none", "finetune profile=quick", "prune rate=0.2", "prune rate=0.4"]
    assert list(table["mmra"]) == [0.9, 0.5, 0.6, 0.2] and list(table["prune_rate"].fillna(-1)) == [-1, -1, 0.2, 0.4]
    assert {"plcc", "srocc", "rmse", "mmae", "mmra"} <= set(table.columns)
    assert ("| m | d/test | baiqa-p (uap-dct, P) | default | 10 (4) | prune rate=0.4 "
            "| 0.700 | 0.700 | 5.000 | 9.000 | 0.200 |") in md
    curves = [f for f in files if "-pruning-" in f.name]
    assert len(curves) == 1 and curves[0].read_text().startswith("<?xml") and "<svg" in curves[0].read_text()
    table1 = pd.read_csv(tmp_path / "board" / "backdoor.csv")  # Table 1: the undefended victims only
    assert len(table1) == 1 and (table1["P_mmra"][0], table1["C_mmra"][0]) == (0.9, 0.8)


# ------------------------------------------------------------------ suite
def test_the_backdoor_defenses_suite_reuses_the_leaderboard_cell_and_sweeps_the_pruning_rate():
    from iqabench.run.suite import expand, load_suite

    data, _ = load_suite("backdoor-defenses")
    cells = expand(data, "backdoor-defenses")
    # `iqabench run -m cnniqa -a baiqa-p`, as the leaderboard's backdoor cells were run: the same keys
    plain = CellSpec("cnniqa", "embedded", "baiqa-p")
    assert [c for c in cells if c.defense == "none"] == [plain]
    assert [(c.defense, c.defense_params) for c in cells if c.defense != "none"] == [
        ("finetune", {"profile": "quick"}), *[("prune", {"rate": r / 10}) for r in range(1, 7)]]
    assert all({**c.__dict__, "defense": "none", "defense_params": {}} == plain.__dict__ for c in cells)


def test_the_backdoor_defenses_suite_runs_end_to_end_on_a_tiny_model(tiny, invoke, tmp_path):
    """The shipped suite file, with the tiny model, data and trigger search swapped in."""
    from iqabench.registry import suites

    text = suites()["backdoor-defenses"][0]
    text = text.replace('["cnniqa"]', '["test-backdoor-cnn"]').replace('["embedded"]', '["test-tiny-noise"]')
    text += "\n[params.baiqa-p]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items())
    (tmp_path / "suite.toml").write_text(text)
    board = tmp_path / "board"
    result = invoke(["run", "--suite", str(tmp_path / "suite.toml"), "--store", str(tmp_path / "s.sqlite"),
                     "--leaderboard", str(board), "-q"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(board / "backdoor_defenses.csv")
    rates = [f"prune rate={r / 10:g}" for r in range(1, 7)]
    assert list(table["defense"]) == ["none", "finetune profile=quick", *rates]
    assert np.isfinite(table[["plcc", "srocc", "rmse", "mmae", "mmra"]].to_numpy()).all()
    assert len(list((board / "backdoor").glob("*-pruning-*.svg"))) == 1


def test_console_table_prints_summaries_with_missing_values(capsys):
    """A stored summary reads a non-finite metric back as None (strict JSON): the run's
    console table shows it as '-' instead of failing after the work is done."""
    from iqabench.cli.summaries import print_summaries

    s = {"kind": "backdoor", "spec": {"model": "m", "defense": "none"}, "attack": "baiqa-p", "victim": "backdoored",
         "trigger": "uap-dct", "n": 3, "plcc": None, "srocc": float("nan"), "rmse": 1.0, "mmae": 2.0,
         "mmra": 0.5, "psnr": None}
    print_summaries([s])
    out = capsys.readouterr().out
    assert "0.500" in out and "2.0" in out


def _chromatic(svg: str) -> set[str]:
    """The colours of an SVG that are not greys (black, white, grey reference lines and frames)."""
    found = {c.lower() for c in re.findall(r"(?:stroke|fill):\s*(#[0-9a-fA-F]{6})", svg)}
    return {c for c in found if len({c[1:3], c[3:5], c[5:7]}) > 1}


def test_the_backdoor_plots_draw_each_attack_in_its_palette_colour(tmp_path):
    """Alpha, pruning and budget curves take the board's palette: an attack's colour
    is the one it has on every other page (and no other colour is drawn)."""
    from iqabench.board.backdoor import plot_cells
    from iqabench.board.backdoor_budget import plot_budget
    from iqabench.board.backdoor_defenses import defense_table, plot_pruning
    from iqabench.board.plots import Palette

    palette = Palette(models={"m": "#0a0b0c"}, attacks={"baiqa-p": "#123456"})
    store = Store(tmp_path / "s.sqlite")
    _cell(store, "v", None, 0.9, 0.80)
    _cell(store, "p2", {"name": "prune", "kind": "post-training", "params": {"rate": 0.2, "fraction": 0.2}}, 0.6, 0.79)
    _cell(store, "ft", {"name": "finetune", "kind": "post-training", "params": {"fraction": 0.2}}, 0.5, 0.78)
    store.add_batch("v", 0, [{"name": f"i{a}", "idx": i, "clean": 50.0, "attacked": 50.0 + 30 * a, "bound": a}
                             for i, a in enumerate((0.0, -0.5, 0.5, 1.0))])
    budget = pd.DataFrame([{"model": "m", "dataset": "d/test", "attack": "baiqa-p", "trigger": "uap-dct", "mode": "C",
                            "recipe": "quick", "seed": 0, "n_triggered": 4, "setting": "", "pgd_iters": 3,
                            "ratio": r, "pgd_eps": e / 255, "mmra": 0.1 * e * r, "srocc": 0.8 - 0.01 * e}
                           for r in (0.2, 0.4) for e in (2, 8)])
    figures = [*plot_cells(store, tmp_path / "a", palette), *plot_pruning(defense_table(store), tmp_path / "p", palette),
               *plot_budget(budget, tmp_path / "b", palette)]
    assert len(figures) == 3
    for figure in figures:
        assert _chromatic(figure.read_text()) == {"#123456"}, figure.name
