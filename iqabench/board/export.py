"""Open data: the store's tables as CSV, Parquet or JSON (``iqabench export``).

Each export holds a table's rows exactly as stored -- every column, JSON
columns (configurations, summaries, manifests, per-image extras) as their
JSON text, SQL NULL as an empty CSV field / Parquet null / JSON ``null`` --
so reading it back gives the store's rows: CSV floats are written in their
shortest round-trip form (read them with ``float_precision="round_trip"``),
Parquet keeps the binary values, JSON numbers are Python's ``repr``.
Parquet needs pyarrow (``pip install iqabench[report]``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..artifacts import atomic_write_bytes
from ..errors import IQABenchError
from ..run.store import Store

FORMATS = {"csv": "csv", "parquet": "parquet", "json": "json"}
WHAT = Store.TABLES


def frame(store: Store, what: str) -> pd.DataFrame:
    """Table ``what`` (``runs``, ``cells`` or ``images``) as a DataFrame, its columns in the store's order."""
    rows = store.table(what)
    columns = [d[1] for d in store.db.execute(f"PRAGMA table_info({what})")]
    return pd.DataFrame(rows, columns=columns)


def export(store: Store, what: str, fmt: str, path: str | Path) -> Path:
    """Write table ``what`` of ``store`` to ``path`` as ``fmt``; returns the path."""
    if what not in WHAT:
        raise IQABenchError(f"--what {what!r}: one of {', '.join(WHAT)}")
    if fmt not in FORMATS:
        raise IQABenchError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        data = json.dumps(store.table(what), indent=1, allow_nan=False).encode()
    elif fmt == "csv":
        data = frame(store, what).to_csv(index=False).encode()
    else:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise IQABenchError("--format parquet needs pyarrow: pip install 'iqabench[report]'") from None
        data = frame(store, what).to_parquet(index=False)
    atomic_write_bytes(path, data)
    return path
