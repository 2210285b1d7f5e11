"""Open data back into a store (``iqabench import``): the inverse of
``iqabench export`` (:mod:`iqabench.board.export`).

A published board ships its store's tables as open data (Parquet, JSON or
CSV, exactly as stored); importing them gives a store with the same rows --
cells, per-image rows, run manifests, the cells each cell spec planned
(``plans``: optional, older exports lack it) -- so anyone can re-render the
board (``iqabench report``), compare with their own runs, or resume the
suite on top of it (with ``--trust-store``, without planning what is
finished: :mod:`.resume`).  The ``batches`` table (which batches of a cell are stored, for
resuming) is not exported: it is rebuilt from the per-image rows' ``batch``.
Rows already in the store are kept (a cell key names one configuration's
result; the same key is the same result).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import IQABenchError
from .store import Store

#: the suffixes ``iqabench export`` writes, in the order a folder is searched
SUFFIXES = (".parquet", ".json", ".csv")


def read_table(path: Path) -> list[dict[str, Any]]:
    """The rows of one exported table (NULL as None, floats bit for bit)."""
    if path.suffix == ".json":
        return json.loads(path.read_text())
    import pandas as pd

    if path.suffix == ".csv":
        df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    elif path.suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except ImportError:
            raise IQABenchError(f"{path}: reading Parquet needs pyarrow: pip install 'iqabench[report]'") from None
    else:
        raise IQABenchError(f"{path}: not an export (one of {', '.join(SUFFIXES)})")
    rows = df.astype(object).to_dict("records")
    return [{k: None if isinstance(v, float) and math.isnan(v) else _plain(v) for k, v in r.items()} for r in rows]


def _plain(value: Any) -> Any:
    """numpy scalars as the Python values sqlite stores."""
    return value.item() if hasattr(value, "item") else value


def find_tables(folder: Path) -> dict[str, Path]:
    """``runs``, ``cells``, ``images`` and ``plans`` files in ``folder`` (the first suffix found of
    each; only ``cells`` must be there)."""
    found = {}
    for name in Store.TABLES:
        for suffix in SUFFIXES:
            if (folder / f"{name}{suffix}").is_file():
                found[name] = folder / f"{name}{suffix}"
                break
    if "cells" not in found:
        raise IQABenchError(f"{folder}: no cells.parquet, cells.json or cells.csv (write them with `iqabench export`)")
    return found


def import_tables(store: Store, folder: str | Path) -> dict[str, int]:
    """Add the exported tables in ``folder`` to ``store`` in one transaction;
    returns the rows read per table."""
    counts = {}
    with store.db:
        for name, path in find_tables(Path(folder)).items():
            rows = read_table(path)
            columns = [d[1] for d in store.db.execute(f"PRAGMA table_info({name})")]
            for row in rows:
                missing = set(columns) - set(row)
                if missing:
                    raise IQABenchError(f"{path}: no column {sorted(missing)[0]!r} (not an iqabench export?)")
            store.db.executemany(
                f"INSERT OR IGNORE INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [[row[c] for c in columns] for row in rows])
            counts[name] = len(rows)
        store.db.execute("INSERT OR IGNORE INTO batches SELECT DISTINCT cell_key, batch FROM images")
    return counts
