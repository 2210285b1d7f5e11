"""The adversarial section's bar charts: what they show and that a reader can
tell the bars apart.  The committed board's chart drew 33 entries -- every
defence and purifier of the default model -- in one colour (the model's),
with a legend taller than the figure, and let one 24-image row stand for the
default model where its 48-image row existed."""
from __future__ import annotations

import re

import pandas as pd

from iqabench.board.adversarial import chart_rows
from iqabench.board.plots import bar_chart

SHIPPED = "cnniqa_embedded.safetensors (sha256:533dd85954090a9c)"
SEED1 = "trained:seed=1: cnniqa-embedded-887cd7b435a4bdfe.safetensors (sha256:5e5dbaa92b4eb421)"


def row(attack, n, weights=SHIPPED, defense="none", variant="", gain=0.5, seed=0, params=""):
    return {"model": "cnniqa", "weights": weights, "dataset": "embedded/test", "attack": attack, "params": params,
            "variant": variant, "defense": defense, "n": n, "seed": seed, "abs_gain": gain,
            "abs_gain_ci_low": gain - 0.05, "abs_gain_ci_high": gain + 0.05}


def test_the_charts_show_undefended_white_box_rows_one_per_model_weights_and_attack_on_the_most_images():
    df = pd.DataFrame([
        row("ifgsm", 24, gain=0.56),
        row("ifgsm", 48, gain=0.57),
        row("ifgsm", 48, weights=SEED1, gain=0.60),
        row("ifgsm", 24, defense="jpeg", gain=0.30),
        row("ifgsm", 48, variant="[from cnniqa [x]]", gain=0.10),
        row("uap @0.2", 48, gain=0.09),
        row("uap (mean)", 48, gain=0.19, params="size=192"),
    ])
    shown = chart_rows(df)
    got = {(r.entry, r.attack): (r.n, r.abs_gain) for r in shown.itertuples()}
    assert got == {("cnniqa", "ifgsm"): (48, 0.57),
                   ("cnniqa [trained:seed=1]", "ifgsm"): (48, 0.60),
                   ("cnniqa", "uap (mean) (size=192)"): (48, 0.19)}


def test_every_entry_of_a_chart_has_its_own_colour(tmp_path):
    shown = chart_rows(pd.DataFrame([row("fgsm", 48), row("fgsm", 48, weights=SEED1),
                                     row("ifgsm", 48), row("ifgsm", 48, weights=SEED1)]))
    svg = bar_chart(shown, "abs_gain", "abs. gain", "t", tmp_path / "c.svg").read_text()
    bars = re.findall(r'clip-path="url\(#[^)]+\)" style="fill: (#[0-9a-f]{6})"', svg)
    assert len(bars) == 4 and len(set(bars)) == 2
