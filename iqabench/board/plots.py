"""Every figure of the board comes from here: matplotlib without a display,
written as SVG (text kept as text: crisp at any zoom and a few kB a chart),
and one :class:`Palette` per board, so a model or an attack has the same
colour on every page.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import atomic_write_bytes

#: colours handed out in order (matplotlib's tab10, then tab20's light shades)
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5")

#: how the lines of one figure differ when they share a colour (poison ratios, pruning settings
#: of one attack, whose colour is the palette's)
STYLES = ("o-", "s--", "^-.", "D:", "v-", "P--")


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text as <text>, not paths: small files, selectable labels
    plt.rcParams["svg.hashsalt"] = "iqabench"  # the same figure gives the same bytes
    return plt


def save_figure(fig, path: Path) -> Path:
    """Write a figure atomically (a killed render leaves no half file) in the
    format its suffix names (``.svg``: the board's; ``.png`` also works) and close it."""
    buf = io.BytesIO()
    fmt = path.suffix.lstrip(".") or "svg"
    # no date (the same figure gives the same bytes), no RDF block (bytes nobody reads)
    fig.savefig(buf, format=fmt, **({"metadata": dict.fromkeys(("Date", "Creator", "Format", "Type"))}
                                     if fmt == "svg" else {}))
    pyplot().close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


@dataclass
class Palette:
    """A colour per model and per attack, assigned in sorted order of the names
    a board shows, so every page of one board agrees."""

    models: dict[str, str] = field(default_factory=dict)
    attacks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, models, attacks) -> "Palette":
        def assign(names):
            return {n: COLOURS[i % len(COLOURS)] for i, n in enumerate(sorted(set(names)))}

        return cls(assign(models), assign(attacks))

    def model(self, name: str) -> str:
        return self.models.get(name, "#444444")

    def attack(self, name: str) -> str:
        return self.attacks.get(base_attack(name), "#444444")


def base_attack(label: str) -> str:
    """An attack's name without its amplitude or mean mark (``uap @0.4`` -> ``uap``)."""
    return label.split(" @")[0].split(" (mean)")[0]


def _half_width(row, key: str) -> float:
    low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return 0.0
    return (high - low) / 2


def bar_chart(df: pd.DataFrame, key: str, label: str, title: str, path: Path) -> Path:
    """Bars of score ``key`` per attack (groups) and entry (colours, one each:
    two weights of one model are two entries), with the 95% intervals as error bars."""
    plt = pyplot()
    attacks = list(dict.fromkeys(df["attack"]))
    entries = list(dict.fromkeys(df["entry"]))
    width = 0.8 / max(len(entries), 1)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(attacks) * max(1, len(entries)) ** 0.5 + 2), 3.4))
    for j, entry in enumerate(entries):
        rows = df[df["entry"] == entry].set_index("attack")
        xs = [i + (j - (len(entries) - 1) / 2) * width for i, a in enumerate(attacks) if a in rows.index]
        got = [a for a in attacks if a in rows.index]
        ys = [rows.loc[a, key] for a in got]
        err = [_half_width(rows.loc[a], key) for a in got]
        ax.bar(xs, ys, width * 0.95, yerr=err, capsize=2, color=COLOURS[j % len(COLOURS)], label=entry,
               error_kw={"lw": 0.8})
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(label)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return save_figure(fig, path)


def amplitude_curves(df: pd.DataFrame, key: str, label: str, palette: Palette, title: str, path: Path) -> Path:
    """Score ``key`` against a universal perturbation's amplitude: a line per
    model x attack, coloured by attack, marked by model."""
    plt = pyplot()
    markers = "os^Dv<>pP*"
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for m, (entry, by_entry) in enumerate(df.groupby("entry", sort=True)):
        for attack, rows in by_entry.groupby("base_attack", sort=True):
            rows = rows.sort_values("amplitude")
            err = [_half_width(r, key) for _, r in rows.iterrows()]
            ax.errorbar(rows["amplitude"], rows[key], yerr=err, marker=markers[m % len(markers)], capsize=2,
                        color=palette.attack(attack), label=f"{entry} / {attack}", lw=1)
    ax.set_xlabel("amplitude")
    ax.set_ylabel(label)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path)


def heatmap(values: pd.DataFrame, title: str, path: Path, higher_is_better: bool) -> Path:
    """A table of numbers as a heatmap (rows x columns, each cell annotated); green = the better end."""
    plt = pyplot()
    data = values.to_numpy(dtype=float)
    label = max((len(str(i)) for i in values.index), default=0) * 0.055  # inches for the longest row label (7 pt)
    fig, ax = plt.subplots(figsize=(1.5 + label + 1.1 * data.shape[1], 1.2 + 0.35 * data.shape[0]))
    image = ax.imshow(data, cmap="RdYlGn" if higher_is_better else "RdYlGn_r", aspect="auto")
    ax.set_xticks(range(data.shape[1]), [str(c) for c in values.columns], rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(data.shape[0]), [str(i) for i in values.index], fontsize=7)
    for (i, j), v in np.ndenumerate(data):
        if math.isfinite(v):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def tradeoff_scatter(df: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str, palette: Palette, title: str,
                     path: Path) -> Path:
    """Clean cost against robustness: a point per row (``x``, ``y``), coloured by its
    ``attack``, marked by its ``defense`` (legend) -- the defences' trade-off at a glance."""
    plt = pyplot()
    markers = "os^Dv<>pP*hX"
    defenses = list(dict.fromkeys(df["defense"]))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for (attack, defense), rows in df.groupby(["attack", "defense"], sort=False):
        ax.scatter(rows[x], rows[y], color=palette.attack(attack), marker=markers[defenses.index(defense) % len(markers)],
                   s=22, edgecolors="black", linewidths=0.3)
    for i, defense in enumerate(defenses):
        ax.scatter([], [], color="white", edgecolors="black", marker=markers[i % len(markers)], label=defense)
    for attack in dict.fromkeys(df["attack"]):
        ax.scatter([], [], color=palette.attack(attack), marker="s", label=attack)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return save_figure(fig, path)
