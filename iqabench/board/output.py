"""Writing the board's files atomically (a killed render leaves no half file):
CSV tables, figures (:mod:`.plots`), and a section's Markdown."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..artifacts import atomic_write_bytes
from .plots import pyplot, save_figure  # noqa: F401  (sections import them from here)


def safe_name(text: str) -> str:
    """``text`` as part of a file name: runs of other characters than ``A-Za-z0-9_.-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    """``table`` as CSV at ``path`` (no index column)."""
    atomic_write_bytes(path, table.to_csv(index=False).encode())
    return path


def section(intro: str, table_markdown: str) -> str:
    """A section of the board's README: its introduction, then its table."""
    return "\n" + intro + "\n" + table_markdown + "\n"
