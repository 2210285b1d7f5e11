"""``iqabench run --trust-store``: a cell spec whose cells the store records
as planned and finished is skipped without planning it -- no model is
trained to learn its keys -- on an empty artifact cache, on a store imported
from open data; a changed parameter default, another parameter or a spec
whose cells are not all finished is planned as without the flag."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from iqabench.contracts import CellSpec
from iqabench.experiments.evasion import EvasionExperiment
from iqabench.hookspecs import hookimpl
from iqabench.models import training
from iqabench.run.runner import Runner, open_run
from iqabench.run.store import Store
from iqabench_plugins.adversarial.fgsm import IFGSM
from models_for_tests import Registers, TinyConvIQA, TinyData

#: an NT-defended cell (and its lam=0 baseline): planning it trains two tiny models
RUN = ["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "-a", "ifgsm", "-p", "iters=2", "--batch-size", "4",
       "--defense", "nt", "--defense-param", "lam=0.01", "--no-leaderboard", "-q"]


def _step(default: float):
    """An I-FGSM registered as ``test-step`` whose ``alpha`` defaults to ``default``."""

    @dataclass
    class Step(IFGSM):
        name = "test-step"
        alpha: float = default

    return Step


class Tiny(Registers):
    def __init__(self, attacks=()):
        super().__init__([TinyConvIQA], [TinyData.make(n_train=4, n_test=4)])
        self.attacks = list(attacks)

    @hookimpl
    def register_attacks(self, register):
        for attack in self.attacks:
            register(attack)


@pytest.fixture
def trainings(monkeypatch):
    """Every model trained (the trainer every defence and the cache call), recorded."""
    calls = []
    original = training.train_model

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "train_model", spy)
    return calls


@pytest.fixture
def plans(monkeypatch):
    """Every evasion cell spec planned, recorded."""
    calls = []
    original = EvasionExperiment.plan

    def spy(self, spec, attack, ctx):
        calls.append(spec)
        return original(self, spec, attack, ctx)

    monkeypatch.setattr(EvasionExperiment, "plan", spy)
    return calls


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _new_cache(monkeypatch, path: Path) -> Path:
    monkeypatch.setenv("IQABENCH_CACHE", str(path))
    return path


def _skips(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("skip ")]


def test_a_finished_run_on_an_empty_cache_is_skipped_without_training(invoke, plugin, tmp_path, monkeypatch,
                                                                       trainings):
    plugin(Tiny(), "trust-tiny")
    store = tmp_path / "s.sqlite"
    _new_cache(monkeypatch, tmp_path / "cache-1")
    first = invoke([*RUN, "--store", str(store)])
    assert first.exit_code == 0, first.output
    assert len(trainings) == 2  # NT at lam=0.01 and its lam=0 baseline
    keys = {k for (k,) in sqlite3.connect(store).execute("SELECT key FROM cells WHERE status = 'done'")}
    assert len(keys) == 2
    plans = Store(store).table("plans")
    assert sorted(k for p in plans for k in json.loads(p["keys"])) == sorted(keys)

    cache = _new_cache(monkeypatch, tmp_path / "cache-2")  # the artifact cache lost: another machine
    trainings.clear()
    again = invoke([*RUN, "--store", str(store), "--trust-store"])
    assert again.exit_code == 0, again.output
    assert trainings == [] and _files(cache) == []  # nothing planned, trained or written
    skips = _skips(again.output)
    assert len(skips) == 2 and {k for k in keys if any(f"cell {k};" in s for s in skips)} == keys
    assert all("--force recomputes" in s for s in skips)

    without = invoke([*RUN, "--store", str(store)])  # the old behaviour: planning learns the keys
    assert without.exit_code == 0, without.output
    assert len(trainings) == 2 and len(_skips(without.output)) == 2


def test_force_plans_even_with_the_flag(invoke, plugin, tmp_path, monkeypatch, plans):
    plugin(Tiny(), "trust-tiny")
    store = tmp_path / "s.sqlite"
    run = ["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "-a", "ifgsm", "-p", "iters=2", "--batch-size", "4",
           "--store", str(store), "--no-leaderboard", "-q"]
    assert invoke(run).exit_code == 0 and len(plans) == 1
    assert invoke([*run, "--trust-store"]).exit_code == 0 and len(plans) == 1
    assert invoke([*run, "--trust-store", "--force"]).exit_code == 0 and len(plans) == 2


def test_a_changed_default_or_another_parameter_is_not_the_finished_spec(plugin, tmp_path, plans):
    plugin(Tiny([_step(1 / 255)]), "trust-step")
    spec = CellSpec(model="test-tiny-cnn", dataset="test-tiny-data", attack="test-step", batch_size=4,
                    attack_params={"iters": 2})

    def run(*specs):
        return Runner(open_run(tmp_path / "s.sqlite", progress=False), trust_store=True).run(list(specs))

    (first,) = run(spec)
    assert len(plans) == 1
    # the same spec, and another spelling of it (a default given explicitly): not planned
    assert run(spec, CellSpec(**{**spec.__dict__, "attack_params": {"iters": "2", "alpha": "1/255"}})) == [first] * 2
    assert len(plans) == 1
    run(CellSpec(**{**spec.__dict__, "attack_params": {"iters": 3}}))  # another parameter: planned
    assert len(plans) == 2

    from iqabench.registry import register_plugin, unregister_plugin
    from iqabench.run.resume import spec_key

    old = spec_key(spec)
    unregister_plugin("trust-step")  # the attack's step size default changes (same plugin version)
    register_plugin(Tiny([_step(2 / 255)]), "trust-step")
    (changed,) = run(spec)
    assert len(plans) == 3 and spec_key(spec) != old
    assert changed != first  # a new cell, computed with the new default
    assert len(Store(tmp_path / "s.sqlite").cells()) == 3


def test_a_spec_whose_cells_are_not_all_finished_is_planned(plugin, tmp_path, plans):
    plugin(Tiny(), "trust-tiny")
    spec = CellSpec(model="test-tiny-cnn", dataset="test-tiny-data", attack="uap", batch_size=4, train_limit=4,
                    attack_params={"epochs": 1, "size": 32})
    path = tmp_path / "s.sqlite"
    first = Runner(open_run(path, progress=False)).run([spec])
    assert len(first) == 3 and len(plans) == 1  # one cell per amplitude
    db = sqlite3.connect(path)
    with db:  # one amplitude's cell lost its summary and last batch (a killed run)
        key = db.execute("SELECT key FROM cells ORDER BY rowid LIMIT 1").fetchone()[0]
        db.execute("UPDATE cells SET status = 'running', summary = NULL WHERE key = ?", (key,))
        db.execute("DELETE FROM images WHERE cell_key = ? AND batch = 1", (key,))
        db.execute("DELETE FROM batches WHERE cell_key = ? AND batch = 1", (key,))
    again = Runner(open_run(path, progress=False), trust_store=True).run([spec])
    assert len(plans) == 2 and again == first  # planned; the lost batch recomputed, the same rows
    Runner(open_run(path, progress=False), trust_store=True).run([spec])
    assert len(plans) == 2  # all finished now


def test_an_older_store_gets_the_plans_table_on_open(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE cells (key TEXT PRIMARY KEY, kind TEXT, model TEXT, dataset TEXT, attack TEXT, "
               "defense TEXT, seed INTEGER, config TEXT, status TEXT, summary TEXT, run_id TEXT, updated REAL)")
    db.close()
    store = Store(path)
    assert store.table("plans") == [] and store.finished_plan("x") is None
    store.record_plan("x", ["k"], ["label"], "run")
    assert store.finished_plan("x") is None  # its cell is not in the store
    store.start_cell("k", "adversarial", {}, "run")
    store.finish_cell("k", {})
    assert store.finished_plan("x") == [("k", "label")]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_an_imported_store_resumes_by_spec_on_an_empty_cache(invoke, plugin, tmp_path, monkeypatch, trainings, fmt):
    plugin(Tiny(), "trust-tiny")
    store, copy, folder = tmp_path / "s.sqlite", tmp_path / "copy.sqlite", tmp_path / "data"
    _new_cache(monkeypatch, tmp_path / "cache-1")
    assert invoke([*RUN, "--store", str(store)]).exit_code == 0
    for what in ("runs", "cells", "images"):  # an older export: no plans
        assert invoke(["export", "--store", str(store), "--format", fmt, "--what", what,
                       "-o", str(folder / f"{what}.{fmt}")]).exit_code == 0
    older = invoke(["import", str(folder), "--store", str(tmp_path / "older.sqlite")])
    assert older.exit_code == 0 and Store(tmp_path / "older.sqlite").table("plans") == []
    result = invoke(["export", "--store", str(store), "--format", fmt, "--what", "plans",
                     "-o", str(folder / f"plans.{fmt}")])
    assert result.exit_code == 0, result.output
    result = invoke(["import", str(folder), "--store", str(copy)])
    assert result.exit_code == 0 and "2 plans" in result.output, result.output
    assert Store(copy).table("plans") == Store(store).table("plans")  # bit for bit

    cache = _new_cache(monkeypatch, tmp_path / "cache-2")
    trainings.clear()
    again = invoke([*RUN, "--store", str(copy), "--trust-store"])
    assert again.exit_code == 0, again.output
    assert trainings == [] and _files(cache) == [] and len(_skips(again.output)) == 2
