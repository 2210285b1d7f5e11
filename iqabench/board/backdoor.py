"""The backdoor leaderboard, shaped like Table 1 of the BAIQA paper.

One row per model x dataset x trigger (plus a ``w/o`` row per model: the
same model trained on clean data, under the same trigger); per label mode
(poison label ``P``, clean label ``C``) the benign PLCC / SROCC / RMSE on
clean test images, mMAE and mMRA.  One SVG per cell plots the achieved mean
score shift against alpha beside the ideal line ``Delta_max * alpha``.
Defended victims are left out here: they are the backdoor x defence
section (:mod:`.backdoor_defenses`), and so are victims whose
poison ratio or PGD budget differs from their profile's default: they are
the budget section (:mod:`.backdoor_budget`).  Any other
parameter that differs from the profile's default (``sampling=uniform``,
``mean_score=...``) is named in the row's ``setting``, so such a cell gets
its own row instead of replacing the default one.  A pure function of the
store, like the rest of the leaderboard.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import IQABenchError
from ..registry import build_attack
from ..run.store import Store
from .labels import backbone_mark
from .output import pyplot, safe_name, save_figure, section, write_csv
from .plots import Palette
from .section import Board, Part, Table, palette_of, rendered_part

METRICS = ("plcc", "srocc", "rmse", "mmae", "mmra", "psnr")
MODES = {"poison": "P", "clean": "C"}
LABELS = {"plcc": "PLCC", "srocc": "SROCC", "rmse": "RMSE", "mmae": "mMAE", "mmra": "mMRA", "psnr": "PSNR"}
#: what the attacker spends: the poisoned fraction and the clean-label PGD budget
BUDGET = ("ratio", "pgd_eps", "pgd_step", "pgd_iters")
#: parameters a row names otherwise (its trigger, recipe) or that never change the victim
_NOT_A_SETTING = ("profile", "trigger")


def undefended_cells(store: Store) -> list[dict]:
    """Finished backdoor cells without a defence: Table 1 and its alpha plots."""
    return [c for c in store.cells(status="done", kind="backdoor") if not c["config"].get("defense")]


def _resolved(attack: str, params: dict) -> tuple[dict, tuple[str, ...]] | None:
    """The attack's recorded parameters and evaluation-only parameter names, or None when it is not installed."""
    return _resolved_json(attack, json.dumps(params, sort_keys=True))


@functools.lru_cache(maxsize=None)
def _resolved_json(attack: str, params: str) -> tuple[dict, tuple[str, ...]] | None:
    try:
        att = build_attack(attack, json.loads(params))
    except IQABenchError:
        return None
    return att.key_params(), tuple(getattr(att, "eval_params", ()))


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def budget_setting(cell: dict) -> tuple[dict, str, bool]:
    """A backdoor cell's budget (``BUDGET`` values), the other parameters that
    differ from its profile's defaults (``"k=v, ..."``), and whether its budget
    is the profile's default.  A clean ("w/o") cell records no attack
    parameters; it depends on the ratio only (the trigger is searched on the
    poison subset), read from the run that stored it."""
    cfg = cell["config"]
    if cfg.get("victim") == "clean":
        spec = (cell.get("summary") or {}).get("spec") or {}
        given = _resolved(spec.get("attack", ""), spec.get("attack_params") or {})
        if given is None:
            return {}, "", True
        params, name = given[0], spec["attack"]
    else:
        params, name = cfg["attack"].get("params") or {}, cfg["attack"]["name"]
    profile = {"profile": params["profile"]} if "profile" in params else {}
    defaults = _resolved(name, profile)
    if defaults is None:  # the plugin is gone: the cell keeps its plain row
        return {k: params.get(k) for k in BUDGET}, "", True
    default, skip = defaults[0], (*defaults[1], *_NOT_A_SETTING, *BUDGET)
    if cfg.get("victim") == "clean":
        params = {k: v for k, v in params.items() if k == "ratio"}  # nothing else reaches the w/o cell
    budget = {k: params.get(k) for k in BUDGET}
    is_default = all(params.get(k) == default.get(k) for k in BUDGET if k in params)
    setting = ", ".join(f"{k}={_value(v)}" for k, v in params.items() if k not in skip and default.get(k) != v)
    return budget, setting, is_default


def backdoor_table(store: Store) -> pd.DataFrame:
    """Table 1: rows model x dataset x trigger, columns ``P_<metric>`` / ``C_<metric>``."""
    rows: dict[tuple, dict] = {}
    for cell in undefended_cells(store):
        cfg, s = cell["config"], cell["summary"]
        _, setting, default_budget = budget_setting(cell)
        if not default_budget:
            continue  # the budget section's
        trigger = cfg["trigger"]["name"]
        dataset = f'{cfg["dataset"]["name"]}/{cfg["dataset"]["split"]}'
        label = f"w/o ({trigger})" if cfg["victim"] == "clean" else trigger
        modes = tuple(MODES.values()) if cfg["victim"] == "clean" else (MODES.get(s.get("label_mode"), "?"),)
        # one row per model x data x trigger x setting x recipe x seed x evaluation size;
        # a later cell replaces an earlier one
        recipe = cfg["model"].get("recipe_profile", "")
        # (a model trained from a random backbone is its own, marked, row)
        key = (cfg["model"]["name"] + backbone_mark(s), dataset, label, setting, recipe, cfg["seed"],
               s.get("n_triggered"))
        row = rows.setdefault(key, {"model": key[0], "dataset": dataset, "trigger": label, "setting": setting,
                                    "recipe": recipe, "seed": cfg["seed"], "n": s.get("n"),
                                    "n_triggered": s.get("n_triggered")})
        for mode in modes:
            for m in METRICS:
                row[f"{mode}_{m}"] = s.get(m)
            row[f"{mode}_cell"] = cell["key"]
    df = pd.DataFrame(list(rows.values()))
    if len(df):
        df["_clean_last"] = ~df["trigger"].str.startswith("w/o")
        df = df.sort_values(["model", "dataset", "recipe", "n_triggered", "_clean_last", "trigger", "setting"],
                            kind="stable", ignore_index=True)
        df = df.drop(columns=["_clean_last"])
    return df


def format_metric(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def to_markdown(df: pd.DataFrame) -> str:
    head = ["model", "dataset", "trigger", "recipe", "n (triggered)"] + [
        f"{mode} {LABELS[m]}" for mode in MODES.values() for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        trigger = f'{r["trigger"]} [{r["setting"]}]' if r.get("setting") else str(r["trigger"])
        cells = [str(r["model"]), str(r["dataset"]), trigger, str(r["recipe"]), f'{r["n"]} ({r["n_triggered"]})']
        cells += [format_metric(r.get(f"{mode}_{m}")) for mode in MODES.values() for m in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stored_shift_curve(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Mean achieved score shift per alpha from a cell's stored rows."""
    by_alpha: dict[float, list[float]] = {}
    for r in rows:
        if r["bound"] != 0:  # alpha 0: the benign rows
            by_alpha.setdefault(float(r["bound"]), []).append(r["attacked"] - r["clean"])
    alphas = np.array(sorted(by_alpha))
    return alphas, np.array([np.mean(by_alpha[a]) for a in alphas])


def plot_cells(store: Store, out: Path, palette: Palette) -> list[Path]:
    """Achieved mean score shift versus alpha, one SVG per undefended backdoor cell, in its attack's colour."""
    cells = undefended_cells(store)  # budget-sweep cells included: each cell is its own plot
    if not cells:
        return []
    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for cell in cells:
        cfg, s = cell["config"], cell["summary"]
        alphas, shift = stored_shift_curve(store.images(cell["key"]))
        if not len(alphas):
            continue
        title = f'{cfg["model"]["name"]} / {s["attack"]} ({cfg["victim"]}) / trigger {cfg["trigger"]["name"]}'
        fig, ax = plt.subplots(figsize=(4.5, 3.5), dpi=100)
        ax.plot(alphas, cfg["delta_max"] * alphas, "k--", label="ideal: Delta_max * alpha")
        ax.plot(alphas, shift, "o-", color=palette.attack(cfg["attack"]["name"]), label=f"achieved (mMRA {s['mmra']:.2f})")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("trigger strength alpha")
        ax.set_ylabel("mean score shift y(alpha) - y0")
        ax.set_title(title, fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f'{safe_name(cfg["model"]["name"])}-{safe_name(s["attack"])}-{cfg["victim"]}-{cell["key"]}.svg'
        written.append(save_figure(fig, path))
    return written


INTRO = """## Backdoor attacks (BAIQA Table 1)

P = poison label, C = clean label.  Benign PLCC / SROCC / RMSE: the model
on clean test images against MOS.  mMAE / mMRA: mean over alpha = +-0.1 ...
+-1.0 of the absolute error to the ideal shift Delta_max * alpha, and of the
ratio of the achieved to the ideal shift (ideal mMRA = 1); PSNR (dB) of the
triggered test images at alpha = 1.  `w/o (trigger)`:
the same model and recipe trained on clean data, under the same trigger.
Plots of the shift versus alpha: `backdoor/*.svg`.
"""


def render_backdoor(store: Store, out: Path, palette: Palette | None = None) -> tuple[str, list[Path]]:
    """Writes ``backdoor.csv`` and the alpha plots (in ``palette``, by default the store's);
    returns the Markdown section (Table 1)."""
    df = backdoor_table(store)
    if not len(df):
        return "", []
    return section(INTRO, to_markdown(df)), [write_csv(df, out / "backdoor.csv"),
                                             *plot_cells(store, out / "backdoor", palette or palette_of(store))]


def part(board: Board) -> Part | None:
    """Table 1 and the shift-vs-alpha curves (nothing without undefended backdoor cells)."""
    return rendered_part("backdoor", "Backdoor attacks", render_backdoor(board.store, board.out, board.palette), INTRO,
                         lambda: Table("BAIQA Table 1 (P = poison label, C = clean label)", backdoor_table(board.store)))
