"""The adversarial table of the leaderboard: one row per finished evasion cell
(adversarial and universal experiments) -- model x dataset x attack (x
non-default parameters x defence x seed) -- with the five scores and their
95% intervals, PSNR, SSIM and, for attacks held to an L-inf bound, the mean
bound (``linf_bound``: AMI-FGSM's per-image 1/NIQE is several times the
others' 10/255, and a reader must see that before comparing rows).
Universal attacks get one row per amplitude plus the mean over amplitudes.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..run.store import Store
from .labels import (baseline_label, defense_label, images_label, model_name, non_default, origin_label, variant_label,
                     weights_label)
from .overview import CLEAN, attack_table
from .output import format_value, safe_name, section, write_csv
from .plots import bar_chart
from .section import Board, Figure, Part, Table

#: the experiment kinds whose cells are rows of this table
KINDS = ("adversarial", "universal")

SCORE_COLUMNS = [
    ("abs_gain", "abs. gain"),
    ("rel_gain", "rel. gain"),
    ("robustness", "robustness"),
    ("wasserstein", "Wasserstein"),
    ("energy", "energy"),
    ("psnr", "PSNR"),
    ("ssim", "SSIM"),
    ("linf_bound", "L-inf bound"),
    ("score_rmse", "score RMSE"),
]


#: the columns that name a row apart from its attack's amplitude
ROW_NAME = ("model", "weights", "origin", "dataset", "images", "variant", "params", "defense", "baseline", "seed")


def _number(value) -> float:
    """A summary figure as a float: NaN where none was computed (stored as null)."""
    return float("nan") if value is None else value


def _linf_bound(summary: dict) -> float:
    """The mean L-inf bound of an L-inf attack's images; NaN for other norms."""
    return _number(summary.get("bound")) if summary.get("norm") == "linf" else float("nan")


def adversarial_table(store: Store) -> pd.DataFrame:
    """One row per finished evasion cell; universal attacks get one row per
    amplitude plus the mean over amplitudes, as the methodology reports."""
    rows = []
    cells = [c for kind in KINDS for c in store.cells(status="done", kind=kind)]
    for cell in cells:
        cfg, s = cell["config"], cell["summary"]
        amplitude = cfg["attack"].get("amplitude")
        variant = variant_label(cfg, s)
        row = {
            "model": model_name(cfg["model"]),
            "weights": weights_label(cfg["model"]["weights"], s),
            "origin": origin_label(cfg, s),
            "dataset": f'{cfg["dataset"]["name"]}/{cfg["dataset"]["split"]}',
            "images": images_label(cfg["dataset"]),
            "attack": cfg["attack"]["name"] + (f" @{amplitude:g}" if amplitude is not None else "") + variant,
            "variant": variant.strip(),
            "params": non_default("attack", cfg["attack"]["name"], cfg["attack"]["params"]),
            "defense": defense_label(cfg.get("defense")),
            "baseline": baseline_label(cfg.get("defense")),
            "seed": cfg["seed"],
            "n": s["n"],
        }
        for key, _ in SCORE_COLUMNS:
            row[key] = _linf_bound(s) if key == "linf_bound" else _number(s.get(key))  # older cells lack newer scores
            ci = s.get(f"{key}_ci")
            if ci is not None:
                row[f"{key}_ci_low"], row[f"{key}_ci_high"] = map(_number, ci)
        for key in ("clean_plcc", "clean_srocc", "clean_rmse"):
            row[key] = _number(s.get(key))
        row["test_srocc"] = _number((s.get("model_test") or {}).get("srocc"))
        row["score_range"] = "{:.4g}..{:.4g}".format(*s["score_range"])
        row["cell"] = cell["key"]
        # one mean per universal perturbation *and* per row it is scored as: a
        # non-adaptive purified cell reuses the bare model's perturbation (the same
        # artifact), so the artifact alone would average every defence together
        row["_group"] = (cfg["attack"].get("artifact"), *(row[k] for k in ROW_NAME)) if amplitude is not None else None
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df) and df["_group"].notna().any():
        means = []
        for _, group in df[df["_group"].notna()].groupby("_group", sort=False):
            mean = group.iloc[0].copy()
            mean["attack"] = mean["attack"].split(" @")[0] + " (mean)"
            for key in [k for k, _ in SCORE_COLUMNS] + ["clean_plcc", "clean_srocc", "clean_rmse", "test_srocc"]:
                mean[key] = group[key].mean()
                for side in ("low", "high"):
                    if f"{key}_ci_{side}" in group:
                        mean[f"{key}_ci_{side}"] = float("nan")  # no interval for a mean of means
            mean["cell"] = ",".join(group["cell"])
            means.append(mean)
        df = pd.concat([df, pd.DataFrame(means)], ignore_index=True)
        df = df.sort_values(["model", "dataset", "attack"], kind="stable", ignore_index=True)
    return df.drop(columns=["_group"]) if "_group" in df else df


def to_markdown(df: pd.DataFrame) -> str:
    headers = ["model", "weights", "dataset", "attack", "params", "n"] + [h for _, h in SCORE_COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, r in df.iterrows():
        defended = f" +{r['defense']}" if r.get("defense", "none") != "none" else ""
        cells = [str(r["model"]) + defended, str(r["weights"]), str(r["dataset"]), str(r["attack"]), str(r["params"]) or "defaults", str(r["n"])]
        for key, _ in SCORE_COLUMNS:
            ci = (r.get(f"{key}_ci_low"), r.get(f"{key}_ci_high")) if f"{key}_ci_low" in r else None
            cells.append(format_value(r[key], ci))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)



def render_adversarial(table: pd.DataFrame, out: Path) -> tuple[str, list[Path]]:
    """Writes ``adversarial.csv`` (always, so a reader sees an empty board as such); returns the section."""
    path = write_csv(table, out / "adversarial.csv")
    return section("## Adversarial attacks\n", to_markdown(table) if len(table) else "_no finished cells_"), [path]


#: the scores the adversarial page draws as bar charts
CHARTED = ("abs_gain", "rel_gain", "robustness", "wasserstein", "energy")

PAGE_INTRO = """One row per finished evasion cell: model x dataset x attack (x non-default
parameters x defence x seed). Scores are computed on each model's FIXED clean
score range, so they are comparable across attacks; a positive gain means the
attack made images look *better* to the model. ± is the half-width of the 95%
Student-t interval of the per-image mean. Robustness: higher = more robust.
Universal attacks appear as their mean over amplitudes (the universal page has
each amplitude). Every number links to its cell. The first table is the
overview's per attack: robustness per model and attack (the lowest seed's cell).
"""


def entry_label(row) -> str:
    """A bar's legend: the model, its weights when trained by the suite
    (``[trained:seed=1]``), its defence, and a mark for untrained weights."""
    weights = str(row.get("weights", ""))
    trained = f" [{weights.split(': ')[0]}]" if weights.startswith("trained:") else ""
    defended = f" +{row['defense']}" if row.get("defense", "none") != "none" else ""
    untrained = " [random-init]" if weights.startswith("random-init") else ""
    return f"{row['model']}{trained}{defended}{untrained}"


def chart_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows the section's bar charts show: undefended white-box attacks
    (defended and transfer rows have their own sections, beside the baselines
    they name), one per model, weights and attack -- where image subsets
    differ, the one on the most images (then the lowest seed)."""
    df = df[(df["defense"] == "none") & (df["variant"].fillna("") == "")
            & ~df["attack"].str.contains(" @", regex=False)].copy()
    if not len(df):
        return df
    df["entry"] = df.apply(entry_label, axis=1)
    df["attack"] = df.apply(lambda r: r["attack"] + (f" ({r['params']})" if r.get("params") else ""), axis=1)
    df = df.sort_values(["n", "seed"], ascending=[False, True], kind="stable")
    return df.drop_duplicates(["entry", "dataset", "attack"]).sort_index()


def bar_charts(board: Board) -> list[Figure]:
    """Per dataset and score: bars per attack and model, with 95% intervals."""
    df = chart_rows(board.adversarial) if len(board.adversarial) else board.adversarial
    if not len(df):
        return []
    labels = dict(SCORE_COLUMNS)
    figures = []
    for dataset, rows in df.groupby("dataset", sort=True):
        for key in CHARTED:
            path = board.out / "adversarial" / f"{safe_name(dataset)}-{key}.svg"
            title = f"{labels[key]} on {dataset}, undefended (95% intervals)"
            figures.append(Figure(bar_chart(rows, key, labels[key], title, path), title))
    return figures


def part(board: Board) -> Part:
    """The adversarial section: ``adversarial.csv``, its Markdown table, its page with bar charts."""
    md, files = render_adversarial(board.adversarial, board.out)
    figures = bar_charts(board)
    table = Table("Every evasion cell", board.adversarial, labels=dict(SCORE_COLUMNS))
    per_attack, _ = attack_table(board)
    tables = [Table("Robustness per model and attack (undefended; higher = more robust)", per_attack,
                    labels=dict(CLEAN)), table] if len(board.adversarial) else []
    return Part("adversarial", "Adversarial attacks", md, [*files, *(f.path for f in figures)], PAGE_INTRO,
                tables, figures)
