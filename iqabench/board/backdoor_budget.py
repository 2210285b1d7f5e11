"""Poisoning budget: how a backdoor's success grows with what the attacker may spend.

Rows: every undefended backdoored cell whose poison ``ratio`` or clean-label
PGD budget (``pgd_eps``, ``pgd_step``, ``pgd_iters``) differs from its
profile's defaults -- the cells of a sweep such as ``iqabench run --suite
cbaiqa-budget`` (Table 1 keeps the default budgets).  Per experiment with at
least two PGD radii, one SVG of mMRA and benign SROCC against the PGD eps
(in 1/255), one line per poison ratio (marked and dashed by ratio, in the
attack's colour of the board's palette).  A pure function of the store, like
the rest of the leaderboard.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..artifacts import config_key
from ..run.store import Store
from .backdoor import BUDGET, MODES, format_metric, budget_setting, undefended_cells
from .output import pyplot, safe_name, save_figure, section, write_csv
from .plots import STYLES, Palette
from .section import Board, Part, Table, palette_of, rendered_part

#: what one curve holds fixed (besides the budget)
EXPERIMENT = ["model", "dataset", "attack", "trigger", "mode", "recipe", "seed", "n_triggered", "setting", "pgd_iters"]
METRICS = ("plcc", "srocc", "rmse", "mmae", "mmra")


def _row(cell: dict, budget: dict, setting: str) -> dict:
    cfg, s = cell["config"], cell["summary"]
    return {"model": cfg["model"]["name"], "dataset": f'{cfg["dataset"]["name"]}/{cfg["dataset"]["split"]}',
            "attack": cfg["attack"]["name"], "trigger": cfg["trigger"]["name"],
            "mode": MODES.get(s.get("label_mode"), "?"), "recipe": cfg["model"].get("recipe_profile", ""),
            "seed": cfg["seed"], "n": s.get("n"), "n_triggered": s.get("n_triggered"), "setting": setting,
            **{k: budget.get(k) for k in BUDGET}, **{m: s.get(m) for m in METRICS}, "cell": cell["key"]}


def budget_table(store: Store) -> pd.DataFrame:
    """One row per backdoored cell with a non-default budget; a later cell replaces an earlier one."""
    rows: dict[tuple, dict] = {}
    for cell in undefended_cells(store):
        if cell["config"].get("victim") != "backdoored":
            continue
        budget, setting, default = budget_setting(cell)
        if default:
            continue
        row = _row(cell, budget, setting)
        rows[tuple(str(row[k]) for k in (*EXPERIMENT, *BUDGET))] = row
    df = pd.DataFrame(list(rows.values()))
    if len(df):
        df = df.sort_values([*EXPERIMENT, "ratio", "pgd_eps", "pgd_step"], kind="stable", na_position="first",
                            ignore_index=True)
    return df


def _eps(v) -> str:
    return "-" if v is None or pd.isna(v) else f"{v * 255:g}/255"


def to_markdown(df: pd.DataFrame) -> str:
    head = ["model", "dataset", "attack (trigger, mode)", "recipe", "n (triggered)", "ratio", "PGD eps", "step",
            "iters", "benign SROCC", "mMAE", "mMRA"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        setting = f', {r["setting"]}' if r["setting"] else ""
        iters = "-" if r["pgd_iters"] is None or pd.isna(r["pgd_iters"]) else str(int(r["pgd_iters"]))
        cells = [str(r["model"]), str(r["dataset"]), f'{r["attack"]} ({r["trigger"]}, {r["mode"]}{setting})',
                 str(r["recipe"]), f'{r["n"]} ({r["n_triggered"]})', f'{r["ratio"]:g}', _eps(r["pgd_eps"]),
                 _eps(r["pgd_step"]), iters, format_metric(r["srocc"]), format_metric(r["mmae"]), format_metric(r["mmra"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_budget(df: pd.DataFrame, out: Path, palette: Palette) -> list[Path]:
    """mMRA and benign SROCC versus the PGD eps, one line per poison ratio (in the
    attack's colour), one SVG per experiment with at least two radii."""
    if not len(df) or df["pgd_eps"].isna().all():
        return []
    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for exp, group in df[df["pgd_eps"].notna()].groupby(EXPERIMENT, sort=False, dropna=False):
        if group["pgd_eps"].nunique() < 2:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), dpi=100)
        for ax, metric, label in zip(axes, ("mmra", "srocc"), ("mMRA (backdoor; ideal 1)", "benign SROCC")):
            for i, (ratio, series) in enumerate(group.groupby("ratio", sort=True)):
                series = series.sort_values("pgd_eps")
                ax.plot(series["pgd_eps"] * 255, series[metric], STYLES[i % len(STYLES)],
                        color=palette.attack(exp[2]), label=f"poison ratio {ratio:g}")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("PGD eps (x / 255, L-inf)")
            ax.set_ylabel(label)
            ax.legend(fontsize=7)
        axes[0].axhline(0, color="grey", lw=0.5)
        model, dataset, attack, trigger, mode = exp[:5]
        fig.suptitle(f"{model} / {attack} ({trigger}, {mode}) / {dataset}: poisoning budget, "
                     f"{int(exp[-1])} PGD steps", fontsize=8)
        fig.tight_layout()
        name = f"{safe_name(model)}-{safe_name(attack)}-{safe_name(trigger)}-budget-{config_key([str(v) for v in exp])}.svg"
        written.append(save_figure(fig, out / name))
    return written


INTRO = """## Poisoning budget

Backdoored victims whose poison ratio or clean-label PGD budget differs from
the profile's default (Table 1 holds the defaults), e.g. `iqabench run
--suite cbaiqa-budget`: benign SROCC on clean test images, mMAE and mMRA
under the trigger, per poison ratio and PGD radius eps (step, iterations).
Curves of mMRA and benign SROCC against eps, one line per ratio:
`backdoor/*-budget-*.svg`.
"""


def render_backdoor_budget(store: Store, out: Path, palette: Palette | None = None) -> tuple[str, list[Path]]:
    """Writes ``backdoor_budget.csv`` and the budget curves (in ``palette``, by default the
    store's); returns the Markdown section."""
    df = budget_table(store)
    if not len(df):
        return "", []
    return section(INTRO, to_markdown(df)), [write_csv(df, out / "backdoor_budget.csv"),
                                             *plot_budget(df, out / "backdoor", palette or palette_of(store))]


def part(board: Board) -> Part | None:
    """The poisoning-budget table and its curves."""
    return rendered_part("backdoor_budget", "Poisoning budget",
                         render_backdoor_budget(board.store, board.out, board.palette), INTRO,
                         lambda: Table("Victims by poison ratio and PGD budget", budget_table(board.store)))
