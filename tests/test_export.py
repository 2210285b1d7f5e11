"""Open data: ``iqabench export`` writes the store's rows exactly as stored,
entry cards validate against the shipped schema and carry every cell's
scores, ``iqabench cite`` names what the store used."""
from __future__ import annotations

import json
import math
import re
import sqlite3

import pandas as pd
import pytest

from board_fixtures import ATTACKS, MODELS, small_store  # noqa: F401  (a fixture)


def _stored(store, table):
    """The oracle: the table read with sqlite3 itself, in insertion order."""
    db = sqlite3.connect(store)
    cur = db.execute(f"SELECT * FROM {table} ORDER BY rowid")
    columns = [d[0] for d in cur.description]
    return columns, cur.fetchall()


def _same(read, stored) -> bool:
    """Equal values; NULL read back as NaN/None; floats bit for bit."""
    if stored is None:
        return read is None or (isinstance(read, float) and math.isnan(read))
    if isinstance(stored, float):
        return isinstance(read, (float, int)) and float(read) == stored
    return read == stored or (isinstance(read, (int, float)) and not isinstance(stored, str) and read == stored)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
@pytest.mark.parametrize("what", ["images", "cells", "runs", "plans"])
def test_an_export_read_back_gives_the_stored_rows_exactly(invoke, small_store, tmp_path, fmt, what):
    out = tmp_path / f"{what}.{fmt}"
    result = invoke(["export", "--store", str(small_store), "--format", fmt, "--what", what, "-o", str(out)])
    assert result.exit_code == 0, result.output
    columns, rows = _stored(small_store, what)
    assert rows  # the small store has rows in every table
    if fmt == "json":
        back = json.loads(out.read_text())
        assert [list(r) for r in back] == [columns] * len(rows)
        back = [list(r.values()) for r in back]
    else:
        df = (pd.read_csv(out, keep_default_na=False, na_values=[""])
              if fmt == "csv" else pd.read_parquet(out))
        assert list(df.columns) == columns
        back = df.astype(object).values.tolist()
    assert len(back) == len(rows)
    for got, want in zip(back, rows):
        bad = [(c, g, w) for c, g, w in zip(columns, got, want) if not _same(g, w)]
        assert not bad, bad


def test_every_cell_is_in_one_valid_entry_card_with_its_summary(invoke, small_store, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from iqabench.board.entries import SCHEMA_PATH

    result = invoke(["export", "--store", str(small_store), "--what", "cards", "-o", str(tmp_path / "cards")])
    assert result.exit_code == 0, result.output
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    cards = [json.loads(p.read_text()) for p in sorted((tmp_path / "cards").glob("*.json"))]
    for card in cards:
        jsonschema.validate(card, schema)
    db = sqlite3.connect(small_store)
    stored = {k: (json.loads(c), json.loads(s)) for k, c, s in
              db.execute("SELECT key, config, summary FROM cells WHERE status = 'done'")}
    entries = {(c["config"]["model"]["name"], c["config"]["model"]["weights"]) for c in
               [{"config": cfg} for cfg, _ in stored.values()]}
    assert sorted((c["name"], c["weights"]) for c in cards) == sorted(entries)
    assert {c["name"] for c in cards} == set(MODELS)
    seen = [s["cell"] for c in cards for s in c["scores"]]
    assert sorted(seen) == sorted(stored)  # every cell exactly once
    for card in cards:
        assert "random-init" in card["flags"]  # the tiny models are untrained
        for score in card["scores"]:
            cfg, summary = stored[score["cell"]]
            assert cfg["model"]["name"] == card["name"]
            assert score["metrics"]["robustness"] == summary["robustness"]
            assert score["ci"]["abs_gain"] == summary["abs_gain_ci"]
        clean = card["clean"]["test-tiny-data/test"]
        fgsm = next(s for k, (cfg, s) in stored.items() if cfg["model"]["name"] == card["name"]
                    and cfg["attack"]["name"] == "fgsm")
        assert clean["srocc"] == fgsm["clean_srocc"]


def test_an_invalid_card_fails_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    from iqabench.board.entries import schema

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema": "iqabench-entry-card/1", "name": "x", "flags": ["random"]}, schema())


def test_cite_prints_each_used_work_once_and_names_those_without_one(invoke, small_store):
    from iqabench.registry import lookup

    result = invoke(["cite", "--store", str(small_store)])
    assert result.exit_code == 0, result.output
    keys = re.findall(r"^@\w+\{([^,]+),", result.output, re.M)
    assert len(keys) == len(set(keys))
    expected = {re.search(r"\{([^,]+),", lookup("attack", a).obj.citation).group(1) for a in ATTACKS}
    expected.add(re.search(r"\{([^,]+),", lookup("experiment", "adversarial").obj.citation).group(1))
    assert set(keys) == expected  # fgsm, korhonen, the UAP paper, the methodology
    missing = result.output.strip().splitlines()[-1]
    assert missing.startswith("% no citation declared:")
    for name in (*MODELS, "test-tiny-data"):
        assert name in missing


def test_cite_takes_each_backdoor_work_once_and_no_attack_from_a_clean_model(tmp_path):
    from iqabench.board.cite import bibliography
    from iqabench.run.store import Store

    store = Store(tmp_path / "s.sqlite")
    for key, victim, attack in (("v", "backdoored", "baiqa-p"), ("w", "clean", "w/o"), ("c", "backdoored", "baiqa-c")):
        cfg = {"kind": "backdoor", "victim": victim, "model": {"name": "cnniqa"}, "dataset": {"name": "koniq10k"},
               "trigger": {"name": "uap-dct"}, "attack": {"name": attack}, "defense": None, "seed": 0}
        store.start_cell(key, "backdoor", cfg, "run")
        store.finish_cell(key, {"n": 1})
    text = bibliography(store)
    keys = re.findall(r"^@\w+\{([^,]+),", text, re.M)
    assert sorted(keys) == ["hosu2020koniq", "kang2014cnniqa", "yu2025baiqa"]  # BAIQA: both attacks and the trigger
    assert "% no citation declared" not in text  # the backdoor experiment kind cites BAIQA as well


@pytest.mark.parametrize("fmt", ["parquet", "json", "csv"])
def test_import_of_an_export_gives_the_stored_rows_and_batches_exactly(invoke, small_store, tmp_path, fmt):
    """``iqabench import`` is the inverse of ``export``: a published board's data
    gives back a store with the same rows (and the batches a resume needs)."""
    folder = tmp_path / "data"
    for what in ("runs", "cells", "images", "plans"):
        result = invoke(["export", "--store", str(small_store), "--format", fmt, "--what", what,
                         "-o", str(folder / f"{what}.{fmt}")])
        assert result.exit_code == 0, result.output
    copy = tmp_path / "copy.sqlite"
    result = invoke(["import", str(folder), "--store", str(copy)])
    assert result.exit_code == 0, result.output
    for table in ("runs", "cells", "images", "batches", "plans"):
        columns, rows = _stored(small_store, table)
        columns_back, back = _stored(copy, table)
        assert columns_back == columns
        assert sorted(back, key=repr) == sorted(rows, key=repr), table  # floats bit for bit, NULL as NULL
    again = invoke(["import", str(folder), "--store", str(copy)])  # idempotent: rows already there are kept
    assert again.exit_code == 0 and _stored(copy, "images") == _stored(small_store, "images")


def test_import_names_a_folder_without_an_export(invoke, tmp_path):
    result = invoke(["import", str(tmp_path), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code != 0 and "no cells.parquet" in result.output and str(tmp_path) in result.output
