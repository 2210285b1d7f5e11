"""The board's overview: one row per model x weights x dataset x images (undefended),
its clean SROCC/PLCC, and per attack *family* the robustness score with its
95% interval, each number linked to its cell.  It opens the site
(``index.html``) and the Markdown leaderboard.

A family's robustness is its worst case: the lowest robustness score among
the family's attacks on that row (the attack a defender has to survive), with
that attack's interval and cell, and the attack named beside the number.
Attacks whose robustness could not be computed (NaN) never win it.  An
attack's family is its declared ``Attack.family``
(:data:`iqabench.contracts.attacks.FAMILIES` gives the column order); one
that declares none, or whose plugin is no longer installed, is a family of
its own, named after the attack.  Families are compared like for like only
when both rows ran the same attacks: the named attack says which one decided.

The per-attack table (one column per attack, an attack with non-default
parameters its own column ``ifgsm (iters=5)``, a universal attack its mean
over amplitudes without an interval) is on the adversarial page
(:func:`attack_table`).  Where several cells fill one slot (seeds), the
lowest seed's is shown.
"""
from __future__ import annotations

import math

import pandas as pd

from ..contracts.attacks import FAMILIES
from ..registry import NO_DEFENSE, lookup
from .entries import entry_id
from .output import format_value
from .plots import base_attack
from .section import Board, Part, Table

#: one row per model x weights x dataset x image subset: a row never mixes two subsets
ROW = ["model", "weights", "dataset", "images"]
CLEAN = [("clean_srocc", "clean SROCC"), ("clean_plcc", "clean PLCC")]
METRIC = "robustness"

INTRO = """Robustness score per model and attack family (higher = more robust): the
family's *least* robust attack on that model, named beside the number, with its
± half-width of the 95% Student-t interval of the per-image mean (a universal
attack's mean over amplitudes has none); undefended models only. The
adversarial page has every attack. Clean SROCC / PLCC: the model's clean
scores against MOS on the attacked images. Weights `random-init` come from an
untrained network and measure nothing about the published model;
`[random backbone]`: trained from a random backbone.
"""


def attack_column(row) -> str:
    """An attack's column: its label, with its non-default parameters."""
    return row["attack"] + (f" ({row['params']})" if row.get("params") else "")


def family_of(attack: str) -> str:
    """The family of attack ``attack`` (a label such as ``uap (mean)`` allowed): its
    declared ``family``, else the attack's own name."""
    name = base_attack(attack)
    try:
        family = getattr(lookup("attack", name).obj, "family", "")
    except Exception:  # a plugin no longer installed
        family = ""
    return family or name


def _order(families) -> list[str]:
    known = [f for f in FAMILIES if f in families]
    return known + sorted(set(families) - set(known))


def per_attack(board: Board) -> pd.DataFrame:
    """One row per undefended model x weights x dataset x attack column (the lowest seed's cell)."""
    df = board.adversarial
    if not len(df):
        return pd.DataFrame(columns=[*ROW, "attack", "params", "column"])
    df = df[(df["defense"] == NO_DEFENSE) & ~df["attack"].str.contains(" @", regex=False)].copy()
    df["column"] = df.apply(attack_column, axis=1) if len(df) else []
    df["cell"] = df["cell"].str.split(",").str[0]
    return df.sort_values(["seed"], kind="stable").drop_duplicates([*ROW, "column"]).sort_values(
        [*ROW, "column"], kind="stable", ignore_index=True)


def _wide(board: Board, per: pd.DataFrame, value) -> tuple[pd.DataFrame, list[str]]:
    """Rows model x weights x dataset with their card and clean scores, and the columns
    ``value(group)`` returns for each row's per-attack rows; the columns in order."""
    rows, columns = [], []
    for keys, group in per.groupby(ROW, sort=True):
        first = group.iloc[0]
        cfg = (board.store.cells_by_key(first["cell"]) or {}).get("config") or {}
        model = cfg.get("model") or {}
        row = dict(zip(ROW, keys))
        row["card"] = entry_id(model.get("name", keys[0]), str(model.get("weights", keys[1])), model.get("params") or {})
        for key, _ in CLEAN:
            row[key], row[f"{key}_cell"] = first[key], first["cell"]
        found = value(group)
        columns += [c for c in found if c not in columns]
        for column, (v, low, high, cell, by) in found.items():
            row.update({column: v, f"{column}_ci_low": low, f"{column}_ci_high": high, f"{column}_cell": cell})
            if by is not None:
                row[f"{column}_by"] = by
        rows.append(row)
    return pd.DataFrame(rows), columns


def _ordered(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``df`` with its value columns in the order ``columns`` (each followed by its companions)."""
    head = [c for c in df.columns if not any(c == v or c.startswith(f"{v}_") for v in columns)]
    tail = [c for v in columns for c in (v, f"{v}_ci_low", f"{v}_ci_high", f"{v}_cell", f"{v}_by") if c in df.columns]
    return df[head + tail]


def _figures(r) -> tuple:
    return (r[METRIC], r.get(f"{METRIC}_ci_low", math.nan), r.get(f"{METRIC}_ci_high", math.nan), r["cell"])


def attack_table(board: Board) -> tuple[pd.DataFrame, list[str]]:
    """Robustness per model and attack column (the adversarial page's); the columns in order."""
    df, columns = _wide(board, per_attack(board), lambda g: {r["column"]: (*_figures(r), None) for _, r in g.iterrows()})
    return _ordered(df, sorted(columns)), sorted(columns)


def worst_per_family(per: pd.DataFrame, keys: list[str] = ROW) -> pd.DataFrame:
    """Per row ``keys``: for each family, the least robust attack's robustness, interval,
    cell (``<family>``, ``_ci_low``, ``_ci_high``, ``_cell``) and label (``<family>_by``)."""
    rows = []
    per = per.assign(family=per["attack"].map(family_of), label=per.apply(attack_column, axis=1))
    for row_keys, group in per.groupby(keys, sort=True):
        row = dict(zip(keys, row_keys if isinstance(row_keys, tuple) else (row_keys,)))
        for family, members in group.groupby("family", sort=False):
            finite = members[members[METRIC].notna()]
            worst = finite.loc[finite[METRIC].idxmin()] if len(finite) else members.iloc[0]
            value, low, high, cell = _figures(worst)
            row.update({family: value if len(finite) else math.nan, f"{family}_ci_low": low if len(finite) else math.nan,
                        f"{family}_ci_high": high if len(finite) else math.nan, f"{family}_cell": cell,
                        f"{family}_by": worst["label"] if len(finite) else ""})
        rows.append(row)
    return pd.DataFrame(rows)


def family_table(board: Board) -> tuple[pd.DataFrame, list[str]]:
    """The overview frame (see the module docstring) and its family columns in order."""
    per = per_attack(board)
    if not len(per):
        return pd.DataFrame(columns=ROW), []

    def worst(group: pd.DataFrame) -> dict:
        found = worst_per_family(group, ROW).iloc[0]
        families = [c for c in found.index if f"{c}_by" in found.index]
        return {f: (found[f], found[f"{f}_ci_low"], found[f"{f}_ci_high"], found[f"{f}_cell"], found[f"{f}_by"])
                for f in families}

    df, families = _wide(board, per, worst)
    return _ordered(df, _order(families)), _order(families)


def to_markdown(df: pd.DataFrame, columns: list[str]) -> str:
    head = [*ROW, *(label for _, label in CLEAN), *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        cells = [str(r[k]) for k in ROW] + [format_value(r[k]) for k, _ in CLEAN]
        for c in columns:
            text = format_value(r.get(c, math.nan), (r.get(f"{c}_ci_low"), r.get(f"{c}_ci_high")))
            by = r.get(f"{c}_by")
            cells.append(text + (f" ({by})" if isinstance(by, str) and by and text != "n/a" else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section(board: Board) -> Part:
    """The overview: the Markdown leaderboard's first table and the site's index page."""
    df, families = family_table(board)
    md = "\n## Overview: robustness per model and attack family\n\n" + INTRO + "\n" + (
        to_markdown(df, families) if len(df) else "_no finished evasion cells_") + "\n"
    return Part("index", "Overview", md, [], INTRO, [Table("Robustness per attack family: the least robust attack "
                                                           "(higher = more robust)", df, labels=dict(CLEAN))])
