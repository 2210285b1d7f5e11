"""Input purification and certified defences on the board (a pure function of the store).

Per model x weights x dataset x images, one row per inference-time defence (its parameters
without the attacker's ``adaptive`` / ``eot_samples``), after the undefended
baseline row (the same model, weights and images: the purified cells' bare
scores).  For each attack two columns, non-adaptive and adaptive side by side:
the defences benchmark's robust absolute gain, ``mean|bare clean - defended
attacked| / range`` (lower = more robust; the baseline row holds the bare
model's gain under the same attack).  The headline is the gap: a defence is
flagged ``non-adaptive only`` for an attack when it holds that attack to under
:data:`HOLDS` of the undefended gain when the attack ignores it, but the
adaptive attack gets :data:`BROKEN` of it or more.  The clean cost sits beside
each defence: the defended model's SROCC and PLCC with MOS on purified clean
images (the baseline row: the bare model's on the clean images), SROCC between
bare and defended clean scores, and SSIM + PSNR/40 of purified clean images.  Seeds are averaged; universal attacks appear as their mean over
amplitudes.  A certified defence (median smoothing) also gets its certified
interval width (over the clean range) against the L2 radius, as a table and
an SVG curve per model.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..run.store import Store
from .labels import defense_label, images_label, model_name, weights_label
from .output import safe_name, section, write_csv
from .plots import pyplot, save_figure
from .section import Board, Part, Table, rendered_part

#: where a row sits: its defended rows and their undefended baseline share model, weights, data and images
PLACE = ["model", "weights", "dataset", "images"]
#: the experiment kinds whose cells can sit behind a purifier
KINDS = ("adversarial", "universal")
#: the attacker parameters every input defence has (a column, not part of the row)
ATTACKER = ("adaptive", "eot_samples")
#: a defence "holds" an attack under this fraction of the undefended gain ...
HOLDS = 0.5
#: ... and an adaptive attack "breaks" it at this fraction or more
BROKEN = 0.5
CLEAN_COST = [("robust_clear_srocc_mos", "SROCC MOS (purified)"), ("robust_clear_plcc_mos", "PLCC MOS (purified)"),
              ("robust_clear_srocc_clear", "SROCC bare vs purified"), ("clear_similarity_score", "SSIM+PSNR/40")]
GAIN = "robust_abs_gain"
#: the undefended baseline row's clean figures: the bare model's own scores against MOS
BARE_COST = {"clear_srocc_mos": "robust_clear_srocc_mos", "clear_plcc_mos": "robust_clear_plcc_mos"}


def purification_table(store: Store) -> pd.DataFrame:
    """One row per finished purified cell: labels, mode, the defence scores and the certified widths."""
    rows = []
    for cell in (c for kind in KINDS for c in store.cells(status="done", kind=kind)):
        cfg, s = cell["config"], cell["summary"]
        defense = cfg.get("defense") or {}
        if defense.get("kind") != "inference":
            continue
        params = dict(defense.get("params") or {})
        mode = "adaptive" if params.get("adaptive") else "non-adaptive"
        row_defense = {"name": defense["name"], "params": {k: v for k, v in params.items() if k not in ATTACKER}}
        row = {"model": model_name(cfg["model"]), "weights": weights_label(cfg["model"]["weights"], s),
               "dataset": f'{cfg["dataset"]["name"]}/{cfg["dataset"]["split"]}', "images": images_label(cfg["dataset"]),
               "defense": defense_label(row_defense), "mode": mode, "attack": cfg["attack"]["name"],
               "seed": cfg["seed"], "n": s["n"], "baseline": f'none ({cfg["model"]["name"]}, same weights and images)'}
        for key in (GAIN, "robust_rel_gain", "nonpurified_abs_gain", "similarity_score", *BARE_COST,
                    *(k for k, _ in CLEAN_COST)):
            row[key] = float("nan") if s.get(key) is None else s[key]
        for radius, fig in (s.get("certified") or {}).items():
            row[f"width@{radius}"] = float("nan") if fig.get("width") is None else fig["width"]
        row["certified_violations"] = s.get("certified_violations")
        rows.append(row)
    return pd.DataFrame(rows)


def _mean(df: pd.DataFrame, keys: list[str], cols: list[str]) -> pd.DataFrame:
    return df.groupby(keys, sort=False, dropna=False)[cols].mean().reset_index()


def matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Rows model x dataset x defence (the undefended baseline first); columns
    ``<attack> | <mode>`` of the robust absolute gain, the clean cost, and ``flags``."""
    keys = PLACE + ["defense"]
    gains = _mean(table, keys + ["attack", "mode"], [GAIN, "nonpurified_abs_gain"])
    wide = gains.pivot_table(index=keys, columns=["attack", "mode"], values=GAIN, sort=False)
    wide.columns = [f"{a} | {m}" for a, m in wide.columns]
    cost = _mean(table, keys, [c for c, _ in CLEAN_COST]).set_index(keys)
    out = cost.join(wide).reset_index()
    base = _mean(gains[gains["mode"] == "non-adaptive"], PLACE + ["attack"], ["nonpurified_abs_gain"])
    bare = _mean(table, PLACE, list(BARE_COST)).set_index(PLACE)
    flags = []
    for _, r in out.iterrows():
        found = []
        for _, b in base[(base[PLACE] == [r[k] for k in PLACE]).all(axis=1)].iterrows():
            plain, adaptive = r.get(f"{b['attack']} | non-adaptive"), r.get(f"{b['attack']} | adaptive")
            undefended = b["nonpurified_abs_gain"]
            known = all(isinstance(v, float) and math.isfinite(v) for v in (plain, adaptive, undefended))
            if known and plain < HOLDS * undefended and adaptive >= BROKEN * undefended:
                found.append(f"non-adaptive only vs {b['attack']}")
        flags.append("; ".join(found))
    out["flags"] = flags
    out["baseline"] = "none"  # the same model, weights and images without the defence
    baseline_rows = []
    for place, group in base.groupby(PLACE, sort=False):
        row = {**dict(zip(PLACE, place)), "defense": "none", "baseline": "", "flags": "",
               "robust_clear_srocc_clear": 1.0, **{col: bare.loc[place, key] for key, col in BARE_COST.items()}}
        for _, b in group.iterrows():
            row[f"{b['attack']} | non-adaptive"] = b["nonpurified_abs_gain"]
        baseline_rows.append(row)
    full = pd.concat([pd.DataFrame(baseline_rows), out], ignore_index=True).sort_values(
        PLACE, kind="stable", ignore_index=True)
    attacks = list(dict.fromkeys(gains["attack"]))
    pairs = [f"{a} | {m}" for a in attacks for m in ("non-adaptive", "adaptive") if f"{a} | {m}" in full]
    return full[keys + ["baseline"] + [c for c, _ in CLEAN_COST] + pairs + ["flags"]]


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def matrix_markdown(m: pd.DataFrame) -> str:
    attacks = [c for c in m.columns if " | " in c]
    headers = ["model", "dataset", "images", "defence", "baseline"] + [h for _, h in CLEAN_COST] + attacks + ["flags"]
    lines = ["| " + " | ".join(h.replace("|", "/") for h in headers) + " |", "|" + "---|" * len(headers)]
    for _, r in m.iterrows():
        cells = [str(r["model"]), str(r["dataset"]), str(r["images"]), str(r["defense"]), str(r.get("baseline") or "--")]
        cells += [_fmt(r.get(c)) for c, _ in CLEAN_COST]
        cells += [_fmt(r.get(a)) for a in attacks] + [str(r.get("flags") or "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def certified(table: pd.DataFrame) -> pd.DataFrame:
    """Per model x dataset x certified defence: radius, mean interval width over the
    clean range, and the attacked images that left a certified interval (0 expected)."""
    widths = [c for c in table.columns if c.startswith("width@")]
    if not widths:
        return pd.DataFrame()
    rows = table.dropna(subset=widths, how="all")
    out = []
    for where, g in rows.groupby(PLACE + ["defense"], sort=False):
        for w in widths:
            out.append({**dict(zip(PLACE + ["defense"], where)), "radius": float(w.split("@")[1]),
                        "width": g[w].mean(), "violations": int(pd.to_numeric(g["certified_violations"]).sum())})
    return pd.DataFrame(out).sort_values(PLACE + ["defense", "radius"], ignore_index=True)


def plot_certified(cert: pd.DataFrame, out: Path) -> list[Path]:
    written = []
    for (model, weights, dataset, images), g in cert.groupby(PLACE, sort=False):
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=100)
        for defense, d in g.groupby("defense", sort=False):
            ax.plot(d["radius"], d["width"], marker="o", label=defense)
        ax.set_xlabel("L2 radius")
        ax.set_ylabel("certified interval width / clean range")
        ax.set_title(f"{model} / {dataset} ({images} images): certified width vs radius", fontsize=8)
        ax.legend(fontsize=6)
        fig.tight_layout()
        out.mkdir(parents=True, exist_ok=True)
        tag = "" if images == "all" else f"-{safe_name(images)}"
        written.append(save_figure(fig, out / f"{safe_name(model)}-{safe_name(dataset)}{tag}-certified.svg"))
    return written


def render_purification(store: Store, out: Path, table: pd.DataFrame | None = None) -> tuple[str, list[Path]]:
    """Writes ``purification.csv``, ``purification_matrix.csv`` and, with a certified defence,
    ``certified.csv`` and its curves; returns the section ("" without purified cells).
    ``table``: :func:`purification_table`, when the caller has it already."""
    table = purification_table(store) if table is None else table
    if not len(table):
        return "", []
    m = matrix(table)
    written = [write_csv(table, out / "purification.csv"), write_csv(m, out / "purification_matrix.csv")]
    md = section("## Input purification: non-adaptive vs adaptive attacks\n",
                 "Robust absolute gain `mean|bare clean - defended attacked| / range` (lower = more robust) "
                 "per attack, the attack crafted on the bare model (non-adaptive) or through the defence "
                 "(adaptive: BPDA, EOT); `none` is the undefended baseline -- the same model, weights and images -- "
                 f"under the non-adaptive attack. Flag: the defence holds an attack under {HOLDS:g} of the "
                 f"undefended gain only while the attack ignores it. Clean cost: the defended model on purified "
                 f"clean images.\n\n" + matrix_markdown(m))
    cert = certified(table)
    if len(cert):
        written.append(write_csv(cert, out / "certified.csv"))
        plots = plot_certified(cert, out / "certified")
        written += plots
        lines = ["| model | dataset | images | defence | radius | width / range | violations |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r.model} | {r.dataset} | {r.images} | {r.defense} | {r.radius:g} | {_fmt(r.width)} | {r.violations} |"
                  for r in cert.itertuples()]
        md += section("### Certified score intervals\n", "\n".join(lines) + "\n\n" + "\n".join(
            f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in plots))
    return md, written


def part(board: Board) -> Part | None:
    """The purification matrix (non-adaptive | adaptive, clean cost) and the certified curves."""
    table = purification_table(board.store)
    return rendered_part("purification", "Input purification and certified defences",
                         render_purification(board.store, board.out, table), __doc__.split("\n\n", 1)[1],
                         lambda: Table("Robust absolute gain per attack, non-adaptive | adaptive; clean cost",
                                       matrix(table)))
