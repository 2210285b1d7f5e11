"""The results store: an embedded SQLite database.

One row per image per cell, one summary per cell, one manifest per run.
Rows are written per batch inside a transaction together with the batch's
completion mark, so a run killed at any instant (even SIGKILL) keeps every
finished batch and loses at most the batch in flight; a restarted run skips
finished batches and cells, and never duplicates a row.  The ``plans``
table records, per cell spec a run planned (its identity:
:func:`.resume.spec_key`), the keys of the store cells it yielded, so that
``--trust-store`` can skip a finished spec without planning it; a store
written before it existed gets it (empty) when opened.

JSON columns (summaries, configs, manifests) are strict JSON: a NaN or
infinite number is written as ``null`` (Python's bare ``NaN`` is not JSON,
and SQLite's ``json_extract`` fails on it), so a summary read back has
``None`` where a figure could not be computed.
"""
from __future__ import annotations

import json
import math
import numbers
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started REAL,
    manifest TEXT
);
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    kind TEXT,
    model TEXT,
    dataset TEXT,
    attack TEXT,
    defense TEXT,
    seed INTEGER,
    config TEXT,
    status TEXT,
    summary TEXT,
    run_id TEXT,
    updated REAL
);
CREATE TABLE IF NOT EXISTS batches (
    cell_key TEXT,
    batch INTEGER,
    PRIMARY KEY (cell_key, batch)
);
CREATE TABLE IF NOT EXISTS images (
    cell_key TEXT,
    name TEXT,
    idx INTEGER,
    batch INTEGER,
    clean REAL,
    attacked REAL,
    psnr REAL,
    ssim REAL,
    linf REAL,
    bound REAL,
    extra TEXT,
    PRIMARY KEY (cell_key, name)
);
CREATE TABLE IF NOT EXISTS plans (
    spec TEXT PRIMARY KEY,
    keys TEXT,
    labels TEXT,
    run_id TEXT,
    updated REAL
);
"""

IMAGE_COLUMNS = ("name", "idx", "clean", "attacked", "psnr", "ssim", "linf", "bound", "extra")


def _finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite real number (numpy's included) replaced by None."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral):
        return float(obj) if math.isfinite(obj) else None
    return obj


def to_json(obj: Any) -> str:
    """Strict JSON (non-finite numbers as ``null``); other objects as ``str``."""
    return json.dumps(_finite_or_none(obj), sort_keys=True, default=str, allow_nan=False)


def _sql_real(value: Any) -> Any:
    """A REAL column's value as SQLite gives it back (NaN is stored as NULL)."""
    return None if isinstance(value, float) and math.isnan(value) else value


def stored_form(rows: Iterable[dict]) -> list[dict[str, Any]]:
    """Rows as :meth:`Store.images` reads them back after :meth:`Store.add_batch`
    (``extra`` as JSON text, NaN as None, ordered by ``idx``): a worker that
    never opens the store summarises exactly what a local run would."""
    out = []
    for r in rows:
        row = {c: _sql_real(r.get(c)) for c in IMAGE_COLUMNS}
        extra = r.get("extra")
        row["extra"] = extra if extra is None or isinstance(extra, str) else to_json(extra)
        out.append(row)
    return sorted(out, key=lambda r: r["idx"])


class Store:
    """Thin, transactional access to the results database."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- runs
    def add_run(self, run_id: str, manifest: dict) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?)",
                (run_id, time.time(), to_json(manifest)),
            )

    def runs(self) -> list[dict]:
        rows = self.db.execute("SELECT run_id, started, manifest FROM runs ORDER BY started").fetchall()
        return [{"run_id": r, "started": s, "manifest": json.loads(m)} for r, s, m in rows]

    # --------------------------------------------------------------- cells
    def cell_status(self, key: str) -> str | None:
        row = self.db.execute("SELECT status FROM cells WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def start_cell(self, key: str, kind: str, config: dict, run_id: str) -> None:
        """Create the cell (status ``running``) unless it exists already."""
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO cells (key, kind, model, dataset, attack, defense, seed, config,"
                " status, summary, run_id, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    key, kind, config.get("model", {}).get("name"), config.get("dataset", {}).get("name"),
                    config.get("attack", {}).get("name"), (config.get("defense") or {}).get("name"),
                    config.get("seed"), to_json(config), "running",
                    None, run_id, time.time(),
                ),
            )
            self.db.execute("UPDATE cells SET run_id = ?, updated = ? WHERE key = ?", (run_id, time.time(), key))

    def reset_cell(self, key: str) -> None:
        """Forget everything computed for a cell (``--force``)."""
        with self.db:
            for table, col in (("images", "cell_key"), ("batches", "cell_key"), ("cells", "key")):
                self.db.execute(f"DELETE FROM {table} WHERE {col} = ?", (key,))

    def finish_cell(self, key: str, summary: dict) -> None:
        with self.db:
            self.db.execute(
                "UPDATE cells SET status = 'done', summary = ?, updated = ? WHERE key = ?",
                (to_json(summary), time.time(), key),
            )

    def cells(self, status: str | None = "done", kind: str | None = None) -> list[dict]:
        query, args = "SELECT key, kind, config, status, summary, run_id FROM cells WHERE 1=1", []
        if status:
            query += " AND status = ?"
            args.append(status)
        if kind:
            query += " AND kind = ?"
            args.append(kind)
        out = []
        for key, k, config, st, summary, run_id in self.db.execute(query + " ORDER BY rowid", args):
            out.append({
                "key": key, "kind": k, "config": json.loads(config), "status": st,
                "summary": json.loads(summary) if summary else None, "run_id": run_id,
            })
        return out

    def cells_by_key(self, key: str) -> dict | None:
        row = self.db.execute("SELECT config, status, summary FROM cells WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return {"key": key, "config": json.loads(row[0]), "status": row[1],
                "summary": json.loads(row[2]) if row[2] else None}

    # --------------------------------------------------------------- plans
    def record_plan(self, spec: str, keys: list[str], labels: list[str], run_id: str) -> None:
        """Record that cell spec ``spec`` (:func:`.resume.spec_key`) planned the cells ``keys``."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, ?)",
                            (spec, to_json(list(keys)), to_json(list(labels)), run_id, time.time()))

    def finished_plan(self, spec: str) -> list[tuple[str, str]] | None:
        """``(key, label)`` of each cell spec ``spec`` planned when it was planned
        and every one of them is finished; else None (never planned, or not all done)."""
        row = self.db.execute("SELECT keys, labels FROM plans WHERE spec = ?", (spec,)).fetchone()
        if row is None:
            return None
        keys, labels = json.loads(row[0]), json.loads(row[1] or "[]")
        if not keys or any(self.cell_status(k) != "done" for k in keys):
            return None
        return list(zip(keys, labels if len(labels) == len(keys) else keys))

    # ------------------------------------------------------------- batches
    def done_batches(self, key: str) -> set[int]:
        return {b for (b,) in self.db.execute("SELECT batch FROM batches WHERE cell_key = ?", (key,))}

    def add_batch(self, key: str, batch: int, rows: Iterable[dict]) -> None:
        """Write one batch's image rows and its completion mark atomically."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO images (cell_key, name, idx, batch, clean, attacked, psnr, ssim,"
                " linf, bound, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (key, r["name"], r["idx"], batch, r["clean"], r["attacked"], r.get("psnr"),
                     r.get("ssim"), r.get("linf"), r.get("bound"),
                     to_json(r["extra"]) if r.get("extra") is not None else None)
                    for r in rows
                ],
            )
            self.db.execute("INSERT OR REPLACE INTO batches VALUES (?, ?)", (key, batch))

    def images(self, key: str) -> list[dict[str, Any]]:
        cur = self.db.execute(
            f"SELECT {', '.join(IMAGE_COLUMNS)} FROM images WHERE cell_key = ? ORDER BY idx", (key,)
        )
        return [dict(zip(IMAGE_COLUMNS, row)) for row in cur]

    # -------------------------------------------------------------- export
    #: the tables :meth:`table` reads (the open-data export's ``--what``)
    TABLES = ("runs", "cells", "images", "plans")

    def table(self, name: str) -> list[dict[str, Any]]:
        """Every row of table ``name`` exactly as stored (JSON columns as their
        text), in insertion order: what ``iqabench export`` writes."""
        if name not in self.TABLES:
            raise ValueError(f"no table {name!r} in the store (one of {', '.join(self.TABLES)})")
        cur = self.db.execute(f"SELECT * FROM {name} ORDER BY rowid")
        columns = [d[0] for d in cur.description]
        return [dict(zip(columns, row)) for row in cur]
