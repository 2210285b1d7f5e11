"""The universal page: each universal perturbation's scores against its
amplitude (the rows ``<attack> @<amplitude>`` of the adversarial table), one
curve per model x attack, coloured by attack as on every page."""
from __future__ import annotations

from .adversarial import SCORE_COLUMNS, entry_label
from .output import safe_name
from .plots import amplitude_curves, base_attack
from .section import Board, Figure, Part, Table

#: the scores drawn against the amplitude
CURVES = ("abs_gain", "robustness")

INTRO = """Universal perturbations: one perturbation fitted on the train split, added to
every test image at each amplitude. Absolute gain and robustness score against
the amplitude, with 95% intervals; the adversarial page shows their mean over
amplitudes.
"""


def part(board: Board) -> Part | None:
    df = board.adversarial
    if not len(df):
        return None
    df = df[df["attack"].str.contains(" @", regex=False)].copy()
    if not len(df):
        return None
    df["amplitude"] = df["attack"].str.split(" @").str[1].astype(float)
    df["base_attack"] = df["attack"].map(base_attack)
    df["entry"] = df.apply(entry_label, axis=1)
    labels = dict(SCORE_COLUMNS)
    figures = []
    for dataset, rows in df.groupby("dataset", sort=True):
        for key in CURVES:
            title = f"{labels[key]} against amplitude on {dataset}"
            path = board.out / "universal" / f"{safe_name(dataset)}-{key}.svg"
            figures.append(Figure(amplitude_curves(rows, key, labels[key], board.palette, title, path), title))
    table = Table("Universal attacks per amplitude", df.drop(columns=["base_attack", "entry"]),
                  labels=dict(SCORE_COLUMNS))
    return Part("universal", "Universal attacks", "", [f.path for f in figures], INTRO, [table], figures)
