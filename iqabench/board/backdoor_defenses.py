"""Backdoor x defence: what fine-tuning and pruning win back against a backdoor.

Rows model x backdoor experiment (attack, trigger, label mode, recipe,
evaluation size) x defence, the undefended victim (``none``) first: benign
PLCC / SROCC / RMSE, mMAE and mMRA of the victim as the defender leaves it
(BAIQA's before/after comparison).  Per experiment with pruned victims, one
SVG of mMRA and benign SROCC versus the pruning rate (rate 0 = the
undefended victim), fine-tuning drawn as horizontal reference lines, in the
attack's colour of the board's palette.  Only
experiments that have at least one defended cell appear.  A pure function
of the store, like the rest of the leaderboard.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..artifacts import config_key
from ..run.store import Store
from .backdoor import LABELS, MODES, format_metric
from .output import pyplot, safe_name, save_figure, section, write_csv
from .plots import STYLES, Palette
from .section import Board, Part, Table, palette_of, rendered_part
from .labels import defense_label

EXPERIMENT = ["model", "dataset", "attack", "trigger", "mode", "recipe", "seed", "n_triggered"]
METRICS = ("plcc", "srocc", "rmse", "mmae", "mmra")
PRUNE = "prune"


def _row(cell: dict) -> dict:
    """One backdoored-victim cell as a table row (defence ``none`` when undefended)."""
    cfg, s = cell["config"], cell["summary"]
    defense = cfg.get("defense") or {}
    rate, setting = None, None
    label = defense_label(defense or None)
    if defense.get("name") == PRUNE:  # the rate always shown: it is the curve's axis
        rate = float(defense["params"]["rate"])
        setting = defense_label({"name": PRUNE, "params": {k: v for k, v in defense["params"].items() if k != "rate"}})
        label = f"{setting} rate={rate:g}"
    return {"model": cfg["model"]["name"], "dataset": f'{cfg["dataset"]["name"]}/{cfg["dataset"]["split"]}',
            "attack": cfg["attack"]["name"], "trigger": cfg["trigger"]["name"],
            "mode": MODES.get(s.get("label_mode"), "?"), "recipe": cfg["model"].get("recipe_profile", ""),
            "seed": cfg["seed"], "n": s.get("n"), "n_triggered": s.get("n_triggered"),
            "defense": label, "defense_name": defense.get("name", "none"), "prune_rate": rate,
            "prune_setting": setting, **{m: s.get(m) for m in METRICS}, "cell": cell["key"]}


def defense_table(store: Store) -> pd.DataFrame:
    """Rows experiment x defence for every experiment with a defended victim; ``none`` first,
    then by defence name and (for pruning) rate; a later cell replaces an earlier one."""
    rows: dict[tuple, dict] = {}
    for cell in store.cells(status="done", kind="backdoor"):
        if cell["config"].get("victim") == "backdoored":
            row = _row(cell)
            rows[tuple(row[k] for k in EXPERIMENT) + (row["defense"],)] = row
    df = pd.DataFrame(list(rows.values()))
    if not len(df):
        return df
    defended = df[df["defense_name"] != "none"].groupby(EXPERIMENT, dropna=False).size().reset_index()[EXPERIMENT]
    df = df.merge(defended, on=EXPERIMENT)  # experiments without a defended cell stay in Table 1 only
    df["_undefended_last"] = df["defense_name"] != "none"
    df = df.sort_values([*EXPERIMENT, "_undefended_last", "defense_name", "prune_rate", "defense"], kind="stable",
                        na_position="first", ignore_index=True)
    return df.drop(columns="_undefended_last")


def to_markdown(df: pd.DataFrame) -> str:
    head = ["model", "dataset", "attack (trigger, mode)", "recipe", "n (triggered)", "defence"] + [
        f"benign {LABELS[m]}" if m in ("plcc", "srocc", "rmse") else LABELS[m] for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        cells = [str(r["model"]), str(r["dataset"]), f'{r["attack"]} ({r["trigger"]}, {r["mode"]})', str(r["recipe"]),
                 f'{r["n"]} ({r["n_triggered"]})', str(r["defense"])]
        lines.append("| " + " | ".join(cells + [format_metric(r[m]) for m in METRICS]) + " |")
    return "\n".join(lines)


def plot_pruning(df: pd.DataFrame, out: Path, palette: Palette) -> list[Path]:
    """mMRA and benign SROCC (side by side) versus pruning rate, in the attack's colour, one SVG
    per experiment with pruned victims."""
    if not len(df) or not df["prune_rate"].notna().any():
        return []
    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for exp, group in df.groupby(EXPERIMENT, sort=False, dropna=False):
        pruned = group[group["prune_rate"].notna()]
        if not len(pruned):
            continue
        base = group[group["defense_name"] == "none"]
        model, dataset, attack, trigger, mode = exp[:5]
        colour = palette.attack(attack)
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), dpi=100)
        for ax, (metric, label) in zip(axes, (("mmra", "mMRA (backdoor)"), ("srocc", "benign SROCC"))):
            for i, (setting, series) in enumerate(pruned.groupby("prune_setting", sort=False)):
                series = series.sort_values("prune_rate")
                xs, ys = list(series["prune_rate"]), list(series[metric])
                if len(base) and 0.0 not in xs:  # rate 0: the undefended victim
                    xs, ys = [0.0, *xs], [float(base[metric].iloc[0]), *ys]
                tag = "" if setting == PRUNE else f" ({setting})"
                ax.plot(xs, ys, STYLES[i % len(STYLES)], color=colour, label=f"pruned{tag}")
            for _, ft in group[~group["defense_name"].isin(["none", PRUNE])].iterrows():
                ax.axhline(ft[metric], color=colour, ls=":", lw=1, label=ft["defense"])
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_xlabel("pruning rate (fraction of channels removed)")
            ax.set_ylabel(label)
            ax.legend(fontsize=6)
        fig.suptitle(f"{model} / {attack} ({trigger}, {mode}) / {dataset}: pruning", fontsize=8)
        fig.tight_layout()
        name = f"{safe_name(model)}-{safe_name(attack)}-{safe_name(trigger)}-pruning-{config_key([str(v) for v in exp])}.svg"
        written.append(save_figure(fig, out / name))
    return written


INTRO = """## Backdoor x defence

The backdoored victim as the defender leaves it (`none` = undefended, the
Table-1 row): benign PLCC / SROCC / RMSE on clean test images, mMAE and mMRA
under the trigger (a working defence drives mMRA towards 0 at a small benign
cost).  Post-training defences (`finetune`, `prune`) start from the victim's
weights and use a benign fraction of the clean train split; a training-time
defence (`nt`) trains the victim on the poisoned split with its loss.
Pruning curves (mMRA and benign SROCC versus rate, rate 0 = undefended,
fine-tuning dotted): `backdoor/*-pruning-*.svg`.
"""


def render_backdoor_defenses(store: Store, out: Path, palette: Palette | None = None) -> tuple[str, list[Path]]:
    """Writes ``backdoor_defenses.csv`` and the pruning curves (in ``palette``, by default the
    store's); returns the Markdown section."""
    df = defense_table(store)
    if not len(df):
        return "", []
    table = write_csv(df.drop(columns=["defense_name", "prune_setting"]), out / "backdoor_defenses.csv")
    return section(INTRO, to_markdown(df)), [table, *plot_pruning(df, out / "backdoor", palette or palette_of(store))]


def part(board: Board) -> Part | None:
    """The backdoor x defence table and the pruning curves."""
    return rendered_part("backdoor_defenses", "Backdoor x defence", render_backdoor_defenses(board.store, board.out, board.palette),
                         INTRO, lambda: Table("Backdoored victims as the defender leaves them",
                                              defense_table(board.store), hidden=("defense_name", "prune_setting")))
