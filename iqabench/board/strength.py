"""Attack strength beyond one setting: gain against the query budget
(black-box attacks), strength ladders, the transfer matrix, and the gain
that survives JPEG.

Every figure is a pure function of the finished evasion cells of the store:

* ``query_curves.csv`` / ``strength/<model>-queries.svg``: the mean gain of
  each black-box cell after 1, 2, 5, 10, ... queries (its summary's
  ``query_curve``);
* ``ladders.csv`` / ``strength/<model>-<attack>-<param>.svg``: cells that
  differ only in one budget parameter (``eps``, ``queries``, ...; a suite's
  list-valued parameter) -- the absolute gain with its 95% interval against
  the budget, PSNR and SSIM against the same budget below;
* ``transfer.csv`` / ``strength/transfer-<attack>.svg``: rows the model an
  attack was crafted on, columns the model it was scored on, the target's
  absolute gain (the diagonal is the white-box cell);
* ``jpeg.csv``: each cell scored after JPEG beside the same cell without.

Cells are matched on their configuration with the varying part removed, so
a ladder, a transfer pair or a JPEG pair is only formed from cells that are
otherwise identical (same model, data, sample, seed, defence).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import canonical_json
from ..run.store import Store
from .adversarial import KINDS
from .labels import cell_model_label, model_label, non_default, requested_weights
from .output import safe_name, section, write_csv
from .plots import pyplot, save_figure
from .section import Board, Part, Table, figures_of

#: parameters a ladder may vary (the budgets of attacks and defences)
BUDGETS = ("eps", "queries", "iters", "alpha", "pixels", "amplitude", "rate")


def _cells(store: Store) -> list[dict]:
    return [c for kind in KINDS for c in store.cells(status="done", kind=kind)]


def _base(cfg: dict, *drop: str, params_drop: str | None = None) -> str:
    """The configuration without ``drop`` (and one attack parameter), as a matching key."""
    out = {k: v for k, v in cfg.items() if k not in drop}
    if params_drop:
        out["attack"] = {**cfg["attack"], "params": {k: v for k, v in cfg["attack"]["params"].items() if k != params_drop}}
    return canonical_json(out)


def _plain(cfg: dict) -> bool:
    return not cfg.get("transfer_from") and not cfg.get("delivery")


def query_table(cells: list[dict]) -> pd.DataFrame:
    rows = []
    for c in cells:
        cfg, s = c["config"], c["summary"]
        if not s.get("query_curve") or not _plain(cfg):
            continue
        for q, gain in s["query_curve"]:
            rows.append({"model": cell_model_label(cfg, s), "attack": cfg["attack"]["name"],
                         "params": non_default("attack", cfg["attack"]["name"], cfg["attack"]["params"]),
                         "defense": (cfg.get("defense") or {}).get("name", "none"), "seed": cfg["seed"],
                         "queries": q, "abs_gain": gain, "cell": c["key"]})
    return pd.DataFrame(rows)


def _budget(cfg: dict, p: str):
    """The value of budget ``p`` in a cell's configuration (a universal cell's amplitude, or a parameter)."""
    return cfg["attack"]["amplitude"] if p == "amplitude" else cfg["attack"]["params"][p]


def ladder_table(cells: list[dict]) -> pd.DataFrame:
    """Cells that differ only in one budget parameter (or a universal
    perturbation's amplitude), at least two values of it."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        cfg = c["config"]
        if not _plain(cfg):
            continue
        if cfg["attack"].get("amplitude") is not None:  # one fitted perturbation at several amplitudes
            attack = {k: v for k, v in cfg["attack"].items() if k != "amplitude"}
            groups.setdefault(("amplitude", canonical_json({**cfg, "attack": attack})), []).append(c)
            continue
        for p in BUDGETS:
            if p in cfg["attack"]["params"]:
                groups.setdefault((p, _base(cfg, params_drop=p)), []).append(c)
    rows = []
    for (p, _), members in groups.items():
        values = {canonical_json(_budget(m["config"], p)) for m in members}
        if len(values) < 2:
            continue
        for m in members:
            cfg, s = m["config"], m["summary"]
            lo, hi = (s.get("abs_gain_ci") or [math.nan, math.nan])
            rows.append({"model": cell_model_label(cfg, s), "attack": cfg["attack"]["name"],
                         "defense": (cfg.get("defense") or {}).get("name", "none"), "seed": cfg["seed"],
                         "param": p, "value": float(_budget(cfg, p)), "abs_gain": s.get("abs_gain"),
                         "abs_gain_ci_low": lo, "abs_gain_ci_high": hi, "psnr": s.get("psnr"), "ssim": s.get("ssim"),
                         "n": s.get("n"), "cell": m["key"]})
    df = pd.DataFrame(rows)
    return df.sort_values(["model", "attack", "defense", "seed", "param", "value"], ignore_index=True) if len(df) else df


def transfer_table(cells: list[dict]) -> pd.DataFrame:
    """Source x target absolute gains: every transfer cell and the white-box cell of its target."""
    white = {_base(c["config"]): c for c in cells if _plain(c["config"])}
    rows, seen = [], set()
    for c in cells:
        cfg = c["config"]
        if not cfg.get("transfer_from") or cfg.get("delivery"):
            continue
        twin = white.get(_base(cfg, "transfer_from"))
        made = requested_weights(c["summary"], transfer_source=True)
        pairs = [(cfg["transfer_from"], made, c)]
        if twin and twin["key"] not in seen:
            pairs.append((cfg["model"], requested_weights(twin["summary"]), twin))
        for source, source_made, cell in pairs:
            seen.add(cell["key"])
            tcfg = cell["config"]
            rows.append({"source": model_label(source, source_made),
                         "target": cell_model_label(tcfg, cell["summary"]),
                         "attack": tcfg["attack"]["name"],
                         "params": non_default("attack", tcfg["attack"]["name"], tcfg["attack"]["params"]),
                         "dataset": f'{tcfg["dataset"]["name"]}/{tcfg["dataset"]["split"]}',
                         "seed": tcfg["seed"], "abs_gain": cell["summary"].get("abs_gain"), "cell": cell["key"]})
    return pd.DataFrame(rows)


def jpeg_table(cells: list[dict]) -> pd.DataFrame:
    plain = {_base(c["config"]): c for c in cells if _plain(c["config"])}
    rows = []
    for c in cells:
        cfg = c["config"]
        if (cfg.get("delivery") or {}).get("format") != "jpeg" or cfg.get("transfer_from"):
            continue
        twin = plain.get(_base(cfg, "delivery"))
        rows.append({"model": cell_model_label(cfg, c["summary"]), "attack": cfg["attack"]["name"],
                     "params": non_default("attack", cfg["attack"]["name"], cfg["attack"]["params"]),
                     "jpeg_quality": cfg["delivery"]["quality"],
                     "abs_gain_before": twin["summary"].get("abs_gain") if twin else math.nan,
                     "abs_gain_after": c["summary"].get("abs_gain"), "cell": c["key"]})
    df = pd.DataFrame(rows)
    return df.sort_values(["model", "attack", "params", "jpeg_quality"], ignore_index=True) if len(df) else df


def _plot_queries(df: pd.DataFrame, out: Path) -> list[Path]:
    plt, written = pyplot(), []
    for model, group in df.groupby("model", sort=False):
        fig, ax = plt.subplots(figsize=(6, 4))
        for (attack, params, defense, seed), g in group.groupby(["attack", "params", "defense", "seed"], sort=False):
            label = attack + (f" {params}" if params else "") + (f" +{defense}" if defense != "none" else "")
            ax.plot(g["queries"], g["abs_gain"], marker="o", label=label + (f" s{seed}" if seed else ""))
        ax.set_xscale("log")
        ax.set(xlabel="queries per image", ylabel="mean absolute gain", title=f"{model}: gain vs queries")
        ax.legend(fontsize=7)
        written.append(save_figure(fig, out / "strength" / f"{safe_name(model)}-queries.svg"))
    return written


def _plot_ladders(df: pd.DataFrame, out: Path) -> list[Path]:
    plt, written = pyplot(), []
    for (model, attack, param), group in df.groupby(["model", "attack", "param"], sort=False):
        fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(6, 6))
        right = bottom.twinx()
        for k, ((defense, seed), g) in enumerate(group.groupby(["defense", "seed"], sort=False)):
            x = g["value"] * (255 if param in ("eps", "alpha") else 1)
            err = np.vstack([g["abs_gain"] - g["abs_gain_ci_low"], g["abs_gain_ci_high"] - g["abs_gain"]])
            label = (f"+{defense}" if defense != "none" else "undefended") + (f" s{seed}" if seed else "")
            top.errorbar(x, g["abs_gain"], yerr=np.nan_to_num(err), marker="o", capsize=3, label=label)
            bottom.plot(x, g["psnr"], marker="o", color=f"C{k}", label=f"PSNR {label}")
            right.plot(x, g["ssim"], marker="s", linestyle="--", color=f"C{k}", alpha=0.6, label=f"SSIM {label}")
        top.set(ylabel="absolute gain (95% CI)", title=f"{model} x {attack}: ladder over {param}")
        bottom.set(xlabel=param + (" (x 1/255)" if param in ("eps", "alpha") else ""), ylabel="PSNR (dB, solid)")
        right.set_ylabel("SSIM (dashed)")
        top.legend(fontsize=7)
        written.append(save_figure(fig, out / "strength" / f"{safe_name(model)}-{safe_name(attack)}-{param}.svg"))
    return written


def _plot_transfer(df: pd.DataFrame, out: Path) -> list[Path]:
    plt, written = pyplot(), []
    for (attack, params, dataset), group in df.groupby(["attack", "params", "dataset"], sort=False):
        m = group.pivot_table(index="source", columns="target", values="abs_gain", aggfunc="mean")
        fig, ax = plt.subplots(figsize=(2 + 1.6 * len(m.columns), 1.5 + 1.0 * len(m.index)))
        im = ax.imshow(m.to_numpy(dtype=float), cmap="viridis")
        ax.set_xticks(range(len(m.columns)), m.columns, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(m.index)), m.index, fontsize=7)
        for (i, j), v in np.ndenumerate(m.to_numpy(dtype=float)):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w", fontsize=8)
        ax.set(xlabel="scored on (target)", ylabel="crafted on (source)", title=f"transfer: {attack} {params}".strip())
        fig.colorbar(im, ax=ax, label="target's absolute gain")
        fig.tight_layout()
        written.append(save_figure(fig, out / "strength" / f"transfer-{safe_name(attack + ' ' + params)}.svg"))
    return written


def _markdown(df: pd.DataFrame, cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def strength_tables(store: Store) -> dict[str, pd.DataFrame]:
    """The section's four tables, by CSV name, from one read of the store's cells."""
    cells = _cells(store)
    return {"query_curves": query_table(cells), "ladders": ladder_table(cells),
            "transfer": transfer_table(cells), "jpeg": jpeg_table(cells)}


def render_strength(store: Store, out: Path, tables: dict[str, pd.DataFrame] | None = None) -> tuple[str, list[Path]]:
    """The section (empty when no cell has a curve, a ladder, a transfer or a JPEG twin) and its files
    (``tables``: :func:`strength_tables`, when the caller has them already)."""
    tables = strength_tables(store) if tables is None else tables
    if not any(len(t) for t in tables.values()):
        return "", []
    written = [write_csv(t, out / f"{name}.csv") for name, t in tables.items() if len(t)]
    md = "\n## Attack strength: queries, ladders, transfer, JPEG\n"
    if len(tables["query_curves"]):
        written += _plot_queries(tables["query_curves"], out)
        final = tables["query_curves"].groupby("cell").tail(1)
        md += "\nBlack-box attacks: mean absolute gain at the queries spent (curves: `strength/*-queries.svg`).\n\n"
        md += _markdown(final, ["model", "attack", "params", "queries", "abs_gain"]) + "\n"
    if len(tables["ladders"]):
        written += _plot_ladders(tables["ladders"], out)
        md += "\nStrength ladders: `ladders.csv`, plots `strength/<model>-<attack>-<param>.svg`.\n\n"
        md += _markdown(tables["ladders"], ["model", "attack", "defense", "param", "value", "abs_gain", "psnr",
                                            "ssim"]) + "\n"
    if len(tables["transfer"]):
        written += _plot_transfer(tables["transfer"], out)
        md += "\nTransfer (rows: crafted on; columns: scored on; the target's absolute gain):\n\n"
        for (attack, params), g in tables["transfer"].groupby(["attack", "params"], sort=False):
            m = g.pivot_table(index="source", columns="target", values="abs_gain", aggfunc="mean").reset_index()
            md += section(f"{attack} {params}".rstrip() + ":\n", _markdown(m, [str(c) for c in m.columns]))
    if len(tables["jpeg"]):
        md += "\nGain before and after JPEG re-encoding of the clean and the attacked image:\n\n"
        md += _markdown(tables["jpeg"], ["model", "attack", "params", "jpeg_quality", "abs_gain_before",
                                         "abs_gain_after"]) + "\n"
    return md, written


def part(board: Board) -> Part | None:
    """Query curves, ladders, the transfer matrix and JPEG pairs, each a table of its page."""
    found = strength_tables(board.store)
    md, files = render_strength(board.store, board.out, found)
    if not md:
        return None
    tables = [Table(caption, found[name]) for name, caption in (
        ("query_curves", "Black-box attacks: mean absolute gain by queries spent"),
        ("ladders", "Strength ladders: one budget parameter varied"),
        ("transfer", "Transfer: crafted on (source), scored on (target)"),
        ("jpeg", "Gain before and after JPEG re-encoding")) if len(found[name])]
    return Part("strength", "Attack strength", md, files, __doc__.split("\n\n", 1)[0], tables, figures_of(files))
