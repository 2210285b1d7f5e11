"""The board's overview: one row per model x weights x dataset (undefended),
its clean SROCC/PLCC, and per attack the robustness score with its 95%
interval, each number linked to its cell.  It opens the site (``index.html``)
and the Markdown leaderboard.

An attack with non-default parameters is its own column (``ifgsm (iters=5)``);
a universal attack is its mean over amplitudes (no interval).  Where several
cells fill one slot (seeds), the lowest seed's is shown.
"""
from __future__ import annotations

import math

import pandas as pd

from ..registry import NO_DEFENSE
from .adversarial import _fmt
from .entries import entry_id
from .section import Board, Part, Table

ROW = ["model", "weights", "dataset"]
CLEAN = [("clean_srocc", "clean SROCC"), ("clean_plcc", "clean PLCC")]
METRIC = "robustness"

INTRO = """Robustness score per model and attack (higher = more robust; ± is the half-width
of the 95% Student-t interval of the per-image mean), undefended models only.
Clean SROCC / PLCC: the model's clean scores against MOS on the attacked images.
Weights `random-init` come from an untrained network and measure nothing about
the published model; `[random backbone]`: trained from a random backbone.
"""


def attack_column(row) -> str:
    """An attack's column: its label, with its non-default parameters."""
    return row["attack"] + (f" ({row['params']})" if row.get("params") else "")


def overview_table(board: Board) -> tuple[pd.DataFrame, list[str]]:
    """The overview frame (see the module docstring) and its attack columns in order."""
    df = board.adversarial
    if not len(df):
        return pd.DataFrame(columns=ROW), []
    df = df[(df["defense"] == NO_DEFENSE) & ~df["attack"].str.contains(" @", regex=False)].copy()
    if not len(df):
        return pd.DataFrame(columns=ROW), []
    df["column"] = df.apply(attack_column, axis=1)
    df = df.sort_values(["seed"], kind="stable")
    attacks = list(dict.fromkeys(sorted(df["column"])))
    rows = []
    for keys, group in df.groupby(ROW, sort=True):
        first = group.iloc[0]
        cfg = (board.store.cells_by_key(first["cell"].split(",")[0]) or {}).get("config") or {}
        model = cfg.get("model") or {}
        row = dict(zip(ROW, keys))
        row["card"] = entry_id(model.get("name", keys[0]), str(model.get("weights", keys[1])), model.get("params") or {})
        for key, _ in CLEAN:
            row[key] = first[key]
            row[f"{key}_cell"] = first["cell"].split(",")[0]
        for column, cell in group.groupby("column", sort=False):
            cell = cell.iloc[0]
            row[column] = cell[METRIC]
            row[f"{column}_ci_low"] = cell.get(f"{METRIC}_ci_low", math.nan)
            row[f"{column}_ci_high"] = cell.get(f"{METRIC}_ci_high", math.nan)
            row[f"{column}_cell"] = cell["cell"].split(",")[0]
        rows.append(row)
    return pd.DataFrame(rows), attacks


def to_markdown(df: pd.DataFrame, attacks: list[str]) -> str:
    head = [*ROW, *(label for _, label in CLEAN), *attacks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        cells = [str(r[k]) for k in ROW] + [_fmt(r[k]) for k, _ in CLEAN]
        cells += [_fmt(r.get(a, math.nan), (r.get(f"{a}_ci_low"), r.get(f"{a}_ci_high"))) for a in attacks]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section(board: Board) -> Part:
    """The overview: the Markdown leaderboard's first table and the site's index page."""
    df, attacks = overview_table(board)
    md = "\n## Overview: robustness per model and attack\n\n" + INTRO + "\n" + (
        to_markdown(df, attacks) if len(df) else "_no finished evasion cells_") + "\n"
    return Part("index", "Overview", md, [], INTRO, [Table("Robustness score (higher = more robust)", df,
                                                           labels=dict(CLEAN))])
