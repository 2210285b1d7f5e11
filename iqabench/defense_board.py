"""The attack x defence matrix of the leaderboard (a pure function of the store).

Rows are model x defence (``none`` = undefended), columns attacks.  For each
row the clean cost (PLCC/SROCC/RMSE of the clean scores against MOS on the
attacked split) and for each attack the RMSE between clean and attacked
scores (the NT paper's measure, raw score units, lower = more robust) and
the robustness score.  Several seeds or universal amplitudes of one cell
are averaged (universal attacks appear as their mean over amplitudes).
"""
from __future__ import annotations

import math

import pandas as pd

ROW_KEYS = ["model", "dataset", "defense"]
CLEAN_COLUMNS = [("clean_srocc", "clean SROCC"), ("clean_plcc", "clean PLCC"), ("clean_rmse", "clean RMSE")]
MATRIX_METRICS = [("score_rmse", "RMSE(clean, attacked) -- lower is more robust"),
                  ("robustness", "Robustness score -- higher is more robust")]


def _attack_label(row) -> str:
    return row["attack"] + (f" ({row['params']})" if row.get("params") else "")


def long_table(adversarial: pd.DataFrame) -> pd.DataFrame:
    """One row per model x dataset x defence x attack (seeds averaged)."""
    if not len(adversarial):
        return adversarial
    df = adversarial[~adversarial["attack"].str.contains(" @", regex=False)].copy()  # amplitudes: keep the mean
    df["attack"] = df.apply(_attack_label, axis=1)
    metrics = [c for c in ("score_rmse", "abs_gain", "rel_gain", "robustness", "wasserstein", "energy",
                           "clean_plcc", "clean_srocc", "clean_rmse") if c in df]
    return df.groupby(ROW_KEYS + ["attack"], sort=False)[metrics].mean().reset_index()


def matrix(long: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows model x dataset x defence with the clean cost, one column per attack."""
    values = long.pivot_table(index=ROW_KEYS, columns="attack", values=metric, aggfunc="mean", sort=False)
    clean = long.groupby(ROW_KEYS, sort=False)[[c for c, _ in CLEAN_COLUMNS]].mean()
    out = clean.join(values).reset_index()
    # undefended first within each model and dataset
    out["_order"] = out["defense"].ne("none")
    return out.sort_values(["model", "dataset", "_order", "defense"], kind="stable").drop(columns="_order")


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"


def to_markdown(m: pd.DataFrame) -> str:
    attacks = [c for c in m.columns if c not in ROW_KEYS and c not in dict(CLEAN_COLUMNS)]
    headers = ROW_KEYS + [h for _, h in CLEAN_COLUMNS] + attacks
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, r in m.iterrows():
        cells = [str(r[k]) for k in ROW_KEYS] + [_fmt(r[c]) for c, _ in CLEAN_COLUMNS] + [_fmt(r[a]) for a in attacks]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def has_defenses(adversarial: pd.DataFrame) -> bool:
    return bool(len(adversarial)) and "defense" in adversarial and adversarial["defense"].ne("none").any()


def markdown_section(adversarial: pd.DataFrame) -> str:
    long = long_table(adversarial)
    parts = ["## Attack x defence\n",
             "Rows: model x defence (`none` = undefended); clean SROCC/PLCC/RMSE against MOS on the "
             "attacked images (the clean cost of a defence); one column per attack.\n"]
    for metric, title in MATRIX_METRICS:
        parts.append(f"### {title}\n\n{to_markdown(matrix(long, metric))}\n")
    return "\n".join(parts)
