"""Writing the board's files atomically (a killed render leaves no half file):
CSV tables, figures (:mod:`.plots`), and a section's Markdown; and the list
of files a render owns (:data:`OWNED`), so the next render into the same
folder removes the ones it no longer writes -- and nothing else."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from ..artifacts import atomic_write_bytes
from .plots import pyplot, save_figure  # noqa: F401  (sections import them from here)


def safe_name(text: str) -> str:
    """``text`` as part of a file name: runs of other characters than ``A-Za-z0-9_.-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def format_value(value, ci=None) -> str:
    """A figure of a Markdown table, ``± half width`` of its interval ``ci`` when both ends are finite."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    if ci is not None and all(isinstance(v, float) and math.isfinite(v) for v in ci):
        text += f" ± {(ci[1] - ci[0]) / 2:.4f}"
    return text


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    """``table`` as CSV at ``path`` (no index column)."""
    atomic_write_bytes(path, table.to_csv(index=False).encode())
    return path


def section(intro: str, table_markdown: str) -> str:
    """A section of the board's README: its introduction, then its table."""
    return "\n" + intro + "\n" + table_markdown + "\n"


#: the file, in the board's folder, listing every file the last render wrote (one relative path a line)
OWNED = "board-files.txt"


def replace_owned(out: Path, written: list[Path]) -> list[Path]:
    """Record ``written`` as the files the board owns in ``out`` and remove those the previous
    render recorded that this one did not write (then their folders, when left empty).  Only
    files a render listed are ever removed: whatever else is in ``out`` stays.  Returns the
    files removed."""
    out = Path(out)
    root = out.resolve()
    now = sorted({p.resolve().relative_to(root).as_posix() for p in written
                  if root in p.resolve().parents})  # a file outside ``out`` is not the folder's
    listed = out / OWNED
    before = listed.read_text().splitlines() if listed.is_file() else []
    removed = []
    for name in sorted(set(before) - set(now) - {OWNED}):
        path = out / name
        if not name or name.startswith("/") or ".." in Path(name).parts or not path.is_file() or path.is_symlink():
            continue  # not a file the board could have written: leave it
        path.unlink()
        removed.append(path)
        for folder in path.parents:
            if folder.resolve() == root or any(folder.iterdir()):
                break
            folder.rmdir()
    atomic_write_bytes(listed, ("\n".join(now) + "\n").encode())
    return removed
