"""The leaderboard: a pure function of the results store.

``render(store, out_dir)`` writes ``adversarial.csv`` and ``README.md``
(Markdown) with one row per model x dataset x attack (x non-default
parameters x seed): the five scores with 95% intervals, PSNR, SSIM and, for
attacks held to an L-inf bound, the mean bound (``linf_bound``: AMI-FGSM's
per-image 1/NIQE is several times the others' 10/255, and a reader must see
that before comparing rows).
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from . import defense_board
from .artifacts import atomic_write_bytes
from .store import Store

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


def _number(value) -> float:
    """A summary figure as a float: NaN where none was computed (stored as null)."""
    return float("nan") if value is None else value


def _linf_bound(summary: dict) -> float:
    """The mean L-inf bound of an L-inf attack's images; NaN for other norms."""
    return _number(summary.get("bound")) if summary.get("norm") == "linf" else float("nan")


def _non_default(kind: str, name: str, params: dict) -> str:
    """Parameters that differ from the component's defaults, compactly.

    A parameter whose default is None and which the component fills in from
    the others (MADC's step size by its mode) is shown only if it differs from
    the value the component would fill in.
    """
    try:
        from .params import param_specs
        from .plugins import lookup

        cls = lookup(kind, name).obj
        specs = param_specs(cls)
        shown = {k: v for k, v in params.items() if k in specs and specs[k].default != v}
        filled = [k for k in shown if specs[k].default is None]
        if filled:
            derived = cls(**{k: v for k, v in shown.items() if k not in filled})
            shown = {k: v for k, v in shown.items() if k not in filled or getattr(derived, k, None) != v}
    except Exception:  # a plugin no longer installed: show everything
        shown = params
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(shown.items()))


def adversarial_table(store: Store) -> pd.DataFrame:
    """One row per finished evasion cell; universal attacks get one row per
    amplitude plus the mean over amplitudes, as the methodology reports."""
    rows = []
    cells = [c for kind in ("adversarial", "universal") for c in store.cells(status="done", kind=kind)]
    for cell in cells:
        cfg, s = cell["config"], cell["summary"]
        amplitude = cfg["attack"].get("amplitude")
        row = {
            "model": cfg["model"]["name"],
            "weights": "random-init" if str(cfg["model"]["weights"]).startswith("random-init") else cfg["model"]["weights"],
            "dataset": f'{cfg["dataset"]["name"]}/{cfg["dataset"]["split"]}',
            "attack": cfg["attack"]["name"] + (f" @{amplitude:g}" if amplitude is not None else ""),
            "params": _non_default("attack", cfg["attack"]["name"], cfg["attack"]["params"]),
            "defense": _defense_label(cfg.get("defense")),
            "baseline": _baseline_label(cfg.get("defense")),
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
        row["_group"] = (cfg["attack"].get("artifact"), cfg["dataset"]["split"], cfg["dataset"]["limit"]) if amplitude is not None else None
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


def _fmt(value, ci=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    if ci is not None and all(isinstance(v, float) and math.isfinite(v) for v in ci):
        text += f" ± {(ci[1] - ci[0]) / 2:.4f}"
    return text


def _defense_label(defense: dict | None) -> str:
    """``none``, or the defence's name with its non-default parameters."""
    if not defense:
        return "none"
    extra = _non_default("defense", defense["name"], defense.get("params") or {})
    return defense["name"] + (f" {extra}" if extra else "")


def _baseline_label(defense: dict | None) -> str:
    """The label of a defended cell's like-for-like baseline row: ``""`` for an undefended
    cell and for a cell that is its own baseline (NT at ``lam = 0``), ``"?"`` when the
    defence's plugin is no longer installed."""
    if not defense:
        return ""
    try:
        from .defended import baseline_of

        base = baseline_of(defense["name"], defense.get("params") or {})
    except Exception:
        return "?"
    label = _defense_label(base if base["name"] != "none" else None)
    return "" if label == _defense_label(defense) else label


def to_markdown(df: pd.DataFrame) -> str:
    headers = ["model", "weights", "dataset", "attack", "params", "n"] + [h for _, h in SCORE_COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, r in df.iterrows():
        defended = f" +{r['defense']}" if r.get("defense", "none") != "none" else ""
        cells = [str(r["model"]) + defended, str(r["weights"]), str(r["dataset"]), str(r["attack"]), str(r["params"]) or "defaults", str(r["n"])]
        for key, _ in SCORE_COLUMNS:
            ci = (r.get(f"{key}_ci_low"), r.get(f"{key}_ci_high")) if f"{key}_ci_low" in r else None
            cells.append(_fmt(r[key], ci))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


INTRO = """# iqabench leaderboard

Generated by `iqabench leaderboard` from the results store; do not edit by hand.

Scores are computed on each model's FIXED clean score range (`score_range`
in `adversarial.csv`), so they are comparable across attacks. For every
attack a positive gain means the attack made images look *better* to the
model (for lower-is-better models the sign is flipped accordingly).
± is the half-width of the 95% Student-t interval of the per-image mean.
Robustness score: higher = more robust. Weights marked `random-init` come
from an untrained network and measure nothing about the published model.
"""


def render(store: Store, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = adversarial_table(store)
    written = []
    csv_path = out / "adversarial.csv"
    atomic_write_bytes(csv_path, df.to_csv(index=False).encode())
    written.append(csv_path)
    md = INTRO + "\n## Adversarial attacks\n\n" + (to_markdown(df) if len(df) else "_no finished cells_") + "\n"
    if defense_board.has_defenses(df):
        long = defense_board.long_table(df)
        for name, frame in (("defenses.csv", long), ("defense_matrix.csv", defense_board.matrix(long, "score_rmse"))):
            atomic_write_bytes(out / name, frame.to_csv(index=False).encode())
            written.append(out / name)
        plots = defense_board.plot_tradeoffs(long, out / "defenses")
        written.extend(plots)
        md += "\n" + defense_board.markdown_section(long, plots, out)
    from .backdoor_board import render_backdoor

    backdoor_md, backdoor_files = render_backdoor(store, out)
    md += backdoor_md
    written.extend(backdoor_files)
    md_path = out / "README.md"
    atomic_write_bytes(md_path, md.encode())
    written.append(md_path)
    return written
