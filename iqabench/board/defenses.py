"""The attack x defence matrix of the leaderboard (a pure function of the store).

Rows are model x start weights x images x defence (``none`` = undefended),
columns white-box attacks.  A defended number only means something next to
the same model made the same way without the defence, so every defended row
names its like-for-like ``baseline`` (:func:`iqabench.registry.baseline_of`:
NT's ``lam = 0`` twin, trained with the same recipe and seed; the undefended
start model for post-training defences) and is listed right after it, on the
same images and seeds.  A row is keyed on what its numbers depend on -- the
model's non-default parameters, the weights it starts from, the image subset
-- never on the model's name alone: two models or two subsets averaged into
one row would measure neither.

For each row: the clean cost -- the model's own test-split SROCC (its card)
and PLCC/SROCC/RMSE of the clean scores against MOS on the attacked images
-- and for each attack the RMSE between clean and attacked scores (the NT
paper's measure, raw score units, lower = more robust) and the robustness
score.  Cells of several seeds are one row: the mean over seeds and their
sample standard deviation (``± sd``, with the seeds listed), so a reader
sees whether a defence's effect exceeds the seed-to-seed spread; a defended
row on fewer seeds than its baseline gets the baseline again on its seeds.  Universal
attacks appear as their mean over amplitudes.  Sweeps of a training-time
defence (several rows sharing one baseline) get a trade-off plot per attack:
clean test SROCC against score RMSE, baseline marked.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..artifacts import config_key
from ..registry import NO_DEFENSE
from .output import pyplot, save_figure, write_csv
from .plots import heatmap, tradeoff_scatter
from .section import Board, Figure, Part, Table, figures_of

#: what makes two cells one row: the model (name and non-default parameters), the weights it
#: starts from (:func:`.labels.origin_label`), the dataset and the images measured, the defence.
#: A row never averages two models, two weights files or two image subsets.
ROW_KEYS = ["model", "origin", "dataset", "images", "defense"]
#: where a row sits (its model, start weights and images): a defended row's baseline shares it
PLACE = ["model", "origin", "dataset", "images"]
CLEAN_COLUMNS = [("test_srocc", "test SROCC"), ("clean_srocc", "clean SROCC"), ("clean_plcc", "clean PLCC"),
                 ("clean_rmse", "clean RMSE")]
MATRIX_METRICS = [("score_rmse", "RMSE(clean, attacked) -- lower is more robust"),
                  ("robustness", "Robustness score -- higher is more robust")]
LONG_METRICS = ("score_rmse", "abs_gain", "rel_gain", "robustness", "wasserstein", "energy",
                "test_srocc", "clean_plcc", "clean_srocc", "clean_rmse")
NONE = NO_DEFENSE


def _attack_label(row) -> str:
    return row["attack"] + (f" ({row['params']})" if row.get("params") else "")


def _seed_list(seeds) -> str:
    return ",".join(str(s) for s in sorted(set(int(x) for x in seeds)))


def _white_box(adversarial: pd.DataFrame) -> pd.DataFrame:
    """The plain white-box cells, one universal attack as its mean over amplitudes. Transfer
    and delivery twins (crafted on another model, scored after JPEG) have their own tables;
    here they would be columns that no defended row can have."""
    plain = ~adversarial["attack"].str.contains(" @", regex=False) & adversarial["variant"].fillna("").eq("")
    df = adversarial[plain].copy()
    df["attack"] = df.apply(_attack_label, axis=1) if len(df) else []
    return df


def _at(frame: pd.DataFrame, place, attack: str) -> pd.Series:
    """Which rows of ``frame`` sit at ``place`` (values of :data:`PLACE`) under ``attack``."""
    return (frame[PLACE + ["attack"]] == [*place, attack]).all(axis=1)


def _paired_baselines(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``seed_list`` (each row x attack's seeds) and, where a defended row ran on
    fewer seeds than its baseline, the baseline again restricted to the seeds they share:
    a defended row is compared with its baseline on the same seeds (like for like), and the
    baseline's full row stays."""
    keys = ROW_KEYS + ["baseline", "attack"]
    df = df.assign(seed_list=df.groupby(keys, sort=False, dropna=False)["seed"].transform(_seed_list))
    extra = []
    defended = df[df["baseline"].astype(bool)]
    for (*where, attack, baseline, seeds), _ in defended.groupby(PLACE + ["attack", "baseline", "seed_list"],
                                                                  sort=False, dropna=False):
        base = df[_at(df, where, attack) & df["defense"].eq(baseline) & df["baseline"].eq("")]
        shared = base[base["seed"].isin([int(s) for s in seeds.split(",")])]
        if len(shared) and len(shared) < len(base):
            extra.append(shared.assign(seed_list=_seed_list(shared["seed"])))
    if extra:
        df = pd.concat([df, *extra], ignore_index=True).drop_duplicates(["cell", "seed_list"], ignore_index=True)
    return df


def long_table(adversarial: pd.DataFrame) -> pd.DataFrame:
    """One row per model x start weights x dataset x images x defence x seed list x attack:
    each metric's mean over the seeds, its sample sd (``<metric>_sd``, NaN for one seed),
    ``seeds`` (how many) and ``seed_list`` (which)."""
    if not len(adversarial):
        return adversarial
    df = _white_box(adversarial)
    if not len(df):
        return df
    df = _paired_baselines(df)
    metrics = [c for c in LONG_METRICS if c in df]
    keys = ROW_KEYS + ["baseline", "seed_list", "attack"]
    grouped = df.groupby(keys, sort=False, dropna=False)
    out = grouped[metrics].mean()
    out = out.join(grouped[metrics].std(ddof=1).add_suffix("_sd"))
    out["seeds"] = grouped["seed"].nunique()
    out["cell"] = grouped["cell"].first()  # the first stored cell of the row: where its numbers link
    return out.reset_index()


def _row_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Undefended first; then every baseline directly followed by the rows it is the baseline
    of that ran on the same seeds (most seeds first)."""
    group = frame["baseline"].where(frame["baseline"].astype(bool), frame["defense"])
    frame = frame.assign(_group_rank=group.ne(NONE), _group=group, _dependent=frame["defense"].ne(group),
                         _defended=frame["defense"].ne(NONE), _seeds=-frame["seeds"])
    frame = frame.sort_values(PLACE + ["_group_rank", "_group", "_seeds", "seed_list", "_defended", "_dependent",
                                       "defense"], kind="stable")
    return frame.drop(columns=["_group_rank", "_group", "_dependent", "_defended", "_seeds"])


def matrix(long: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows model x start weights x dataset x images x defence x seed list, with baseline,
    seeds and the clean cost, one column per attack (the mean over seeds; ``<attack> sd``
    columns hold the spread)."""
    rows = ROW_KEYS + ["baseline", "seed_list"]
    values = long.pivot_table(index=rows, columns="attack", values=metric, aggfunc="mean", sort=False)
    spread = long.pivot_table(index=rows, columns="attack", values=f"{metric}_sd", aggfunc="mean", sort=False,
                              dropna=False)
    spread.columns = [f"{c} sd" for c in spread.columns]
    clean_cols = [c for c, _ in CLEAN_COLUMNS if c in long]
    clean = long.groupby(rows, sort=False, dropna=False).agg(
        {"seeds": "max", **{c: "mean" for c in clean_cols}, **{f"{c}_sd": "mean" for c in clean_cols}})
    out = clean.join(values).join(spread).reset_index()
    return _row_order(out).reset_index(drop=True)


def row_label(row, varying: list[str]) -> str:
    """A row's short name for a figure: model and defence, plus whichever of its start
    weights, images and seeds differ between the rows of that figure."""
    extra = [f"{k} {_short_origin(row[k]) if k == 'origin' else row[k]}" for k in varying]
    return f"{row['model']} {row['defense']}" + (f" [{'; '.join(extra)}]" if extra else "")


def _short_origin(origin: str) -> str:
    return str(origin).split(" (")[0]


def _varying(rows: pd.DataFrame) -> list[str]:
    return [k for k in ("origin", "images", "seed_list") if k in rows and rows[k].nunique() > 1]


def _fmt(v, sd=None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    text = f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    if sd is not None and isinstance(sd, float) and math.isfinite(sd):
        text += f" ± {sd:.4f}" if abs(sd) < 100 else f" ± {sd:.1f}"
    return text


def to_markdown(m: pd.DataFrame) -> str:
    clean = [(c, h) for c, h in CLEAN_COLUMNS if c in m]
    fixed = set(ROW_KEYS) | {"baseline", "seeds", "seed_list"} | {c for c, _ in clean} | {f"{c}_sd" for c, _ in clean}
    attacks = [c for c in m.columns if c not in fixed and not c.endswith(" sd")]
    headers = ROW_KEYS + ["baseline", "seeds"] + [h for _, h in clean] + attacks
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, r in m.iterrows():
        cells = [str(r[k]) for k in ROW_KEYS] + [str(r["baseline"]) or "--", str(r["seed_list"])]
        cells += [_fmt(r[c], r.get(f"{c}_sd")) for c, _ in clean] + [_fmt(r[a], r.get(f"{a} sd")) for a in attacks]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def has_defenses(adversarial: pd.DataFrame) -> bool:
    return bool(len(adversarial)) and "defense" in adversarial and adversarial["defense"].ne(NONE).any()


# ------------------------------------------------------------ trade-off plots ---
def sweeps(long: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    """Per place (model, start weights, dataset, images) x attack x (non-trivial) baseline:
    the baseline's rows (one per seed list) and the rows that name it, when there are at
    least two of them (a sweep of one defence)."""
    out = []
    defended = long[long["baseline"].astype(bool) & long["baseline"].ne(NONE)]
    for where, rows in defended.groupby(PLACE + ["attack", "baseline"], sort=True):
        *place, attack, baseline = where
        base = long[_at(long, place, attack) & long["defense"].eq(baseline)]
        if len(rows) >= 2 and len(base):
            out.append((tuple(where), pd.concat([base, rows])))
    return out


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def plot_tradeoffs(long: pd.DataFrame, out: Path) -> list[Path]:
    """One SVG per sweep: x = clean SROCC on the test split (the model's card; the attacked
    images' clean SROCC when no card has it), y = score RMSE under the attack; mean over seeds
    with sd error bars; the baseline is the black star."""
    found = sweeps(long)
    if not found:
        return []
    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for where, rows in found:
        model, _, dataset, images, attack, baseline = where
        xcol = "test_srocc" if "test_srocc" in rows and rows["test_srocc"].notna().all() else "clean_srocc"
        fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=100)
        for _, r in rows.iterrows():
            is_base = r["defense"] == baseline
            seeds = int(r["seeds"])
            ax.errorbar(r[xcol], r["score_rmse"], xerr=_finite(r.get(f"{xcol}_sd")), yerr=_finite(r.get("score_rmse_sd")),
                        fmt="*" if is_base else "o", color="black" if is_base else "C0", ms=11 if is_base else 6,
                        capsize=3, lw=1)
            tag = _short(r["defense"], baseline)
            ax.annotate(f"{'baseline ' if is_base else ''}{tag} (seed{'s' * (seeds != 1)} {r['seed_list']})",
                        (r[xcol], r["score_rmse"]), textcoords="offset points", xytext=(5, 4), fontsize=6)
        ax.set_xlabel("clean SROCC (test split)" if xcol == "test_srocc" else "clean SROCC (attacked images)")
        ax.set_ylabel(f"score RMSE under {attack} (lower = more robust)")
        ax.set_title(f"{model} / {dataset} ({images} images): {baseline.split()[0]} trade-off vs {attack}",
                     fontsize=8)
        fig.tight_layout()
        name = f"{_safe(model)}-{_safe(baseline.split()[0])}-{_safe(attack.split()[0])}-tradeoff-" \
               f"{config_key(list(where))}.svg"
        written.append(save_figure(fig, out / name))
    return written


def _finite(v):
    return v if isinstance(v, float) and math.isfinite(v) else None


def _short(label: str, baseline: str) -> str:
    """The part of a defence label that differs from its baseline's (e.g. ``lam=1e-07``)."""
    base = set(baseline.split())
    return " ".join(t for t in label.split() if t not in base) or label


# ------------------------------------------------------------------ section ---
INTRO = ("Rows: model x start weights (`origin`) x images x defence (`none` = undefended), each defended "
         "row right after its like-for-like `baseline` (the same model made the same way without the defence, "
         "on the same images and seeds: for NT its `lam=0` twin with the same recipe and seed; for "
         "fine-tuning and pruning the undefended model they start from). A row never averages two models, "
         "weights files or image subsets. Clean cost: `test SROCC` is the model's own SROCC on the whole test "
         "split, clean SROCC/PLCC/RMSE are its clean scores against MOS on the attacked images. Several "
         "seeds: mean ± sample sd over the `seeds` listed (each seed trains its own model and draws its own "
         "image sample of that size, so the sd covers both); where a defended row ran on fewer seeds than "
         "its baseline, the baseline appears again on just those seeds, right before it. One "
         "column per white-box attack (transfer and JPEG twins are on the strength page).\n")


def markdown_section(long: pd.DataFrame, plots: list[Path] = (), root: Path | None = None) -> str:
    parts = ["## Attack x defence\n", INTRO]
    for metric, title in MATRIX_METRICS:
        parts.append(f"### {title}\n\n{to_markdown(matrix(long, metric))}\n")
    if plots:
        parts.append("### Trade-off of defence sweeps\n\nClean test SROCC against score RMSE under the attack "
                     "(mean ± sd over seeds); the star is the baseline.\n")
        for p in plots:
            rel = p.relative_to(root) if root is not None else p
            parts.append(f"![{p.stem}]({rel.as_posix()})\n")
    return "\n".join(parts)


def render_defenses(adversarial: pd.DataFrame, out: Path) -> tuple[str, list[Path]]:
    """Writes ``defenses.csv``, ``defense_matrix.csv`` and the trade-off plots when the
    adversarial table has defended rows; returns the section."""
    if not has_defenses(adversarial):
        return "", []
    long = long_table(adversarial)
    written = [write_csv(long, out / "defenses.csv"), write_csv(matrix(long, "score_rmse"), out / "defense_matrix.csv")]
    plots = plot_tradeoffs(long, out / "defenses")
    return "\n" + markdown_section(long, plots, out), written + plots


def defense_figures(board: Board, long: pd.DataFrame) -> list[Figure]:
    """Per dataset: a heatmap of each matrix and the clean cost against robustness scatter."""
    figures = []
    for dataset, rows in long.groupby("dataset", sort=True):
        labels = rows.apply(row_label, axis=1, varying=_varying(rows))  # one per row, for every figure below
        for metric, title in MATRIX_METRICS:
            values = rows.assign(row=labels).pivot_table(index="row", columns="attack", values=metric, sort=False)
            path = board.out / "defenses" / f"{_safe(dataset)}-{metric}-heatmap.svg"
            figures.append(Figure(heatmap(values, f"{title} ({dataset})", path, metric != "score_rmse"),
                                  f"{title} ({dataset})"))
        xcol = "test_srocc" if "test_srocc" in rows and rows["test_srocc"].notna().all() else "clean_srocc"
        title = f"Clean SROCC against robustness, per defence and attack ({dataset})"
        path = board.out / "defenses" / f"{_safe(dataset)}-clean-vs-robustness.svg"
        figures.append(Figure(tradeoff_scatter(rows.assign(defense=labels), xcol, "robustness", xcol.replace("_", " "),
                                               "robustness score (higher = more robust)", board.palette, title, path),
                              title))
    return figures


def part(board: Board) -> Part | None:
    """The attack x defence matrices (numbers linked to cells), their heatmaps, the clean
    cost against robustness scatter and the trade-off plots (nothing without defended cells)."""
    md, files = render_defenses(board.adversarial, board.out)
    if not md:
        return None
    long = long_table(board.adversarial)
    keys = ROW_KEYS + ["baseline", "seed_list"]
    cells = long.pivot_table(index=keys, columns="attack", values="cell", aggfunc="first", sort=False, dropna=False)
    cells = cells.add_suffix("_cell").reset_index()  # each attack's number links to its (first) cell
    tables = [Table(title, matrix(long, metric).merge(cells, on=keys, how="left")) for metric, title in MATRIX_METRICS]
    tables.append(Table("Per model x defence x attack (mean and sd over seeds)", long))
    figures = defense_figures(board, long)
    return Part("defenses", "Attack x defence", md, [*files, *(f.path for f in figures)], INTRO, tables,
                [*figures, *figures_of(files)])
