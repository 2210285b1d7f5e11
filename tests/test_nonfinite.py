"""Non-finite scores or gradients inside a gradient attack are a one-line
error naming the image and the step (never an image silently left
unchanged), and the store's summaries are strict JSON (NaN written as null)."""
from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image

from iqabench.errors import IQABenchError, NonFiniteError
from iqabench.gradients import counting_steps, gain_and_grad
from iqabench.run.store import Store
from iqabench_plugins.adversarial.fgsm import FGSM, IFGSM
from iqabench_plugins.adversarial.korhonen import Korhonen
from iqabench_plugins.adversarial.madc import MADC
from iqabench_plugins.adversarial.mifgsm import MIFGSM
from iqabench_plugins.adversarial.pgd import PGD
from models_for_tests import MeanLuma, Registers

#: the luma above which ``LumaCliff`` has no score: 2.5 grey levels above 128
CLIFF = 130.5 / 255


class LumaCliff(MeanLuma):
    """Mean luma x 100 + where(u > 0, sqrt(u), 0), u = CLIFF - mean luma: the
    score is finite everywhere, its gradient is finite below the cliff and NaN
    beyond it (where's masked branch still back-propagates 0 x sqrt'(u < 0)).
    Every pixel's gradient is positive below the cliff, so I-FGSM raises the
    luma by alpha per step: an image at grey level 128 has a finite gradient
    at steps 1-3 and NaN at step 4 -- where the old code's sign(NaN) = 0 froze
    it and finished the cell silently."""

    name = "test-luma-cliff"
    cliff = CLIFF

    def forward(self, x):
        luma = MeanLuma.forward(self, x) / 100
        u = self.cliff - luma
        return 100 * luma + torch.where(u > 0, torch.sqrt(u), torch.zeros_like(u))


class ScoreCliff(LumaCliff):
    """The same, with the score itself NaN beyond the cliff."""

    def forward(self, x):
        luma = MeanLuma.forward(self, x) / 100
        return 100 * luma + torch.sqrt(self.cliff - luma)


def _grey(levels, size=16):
    return torch.stack([torch.full((3, size, size), v / 255) for v in levels])


def test_gain_and_grad_raises_with_the_batch_positions_and_the_step():
    model = ScoreCliff()
    x = _grey([100, 140, 90, 200])  # positions 1 and 3 are beyond the cliff
    with counting_steps():
        gain_and_grad(model, _grey([100, 100, 90, 100]))  # step 1: finite
        with pytest.raises(NonFiniteError) as info:
            gain_and_grad(model, x)
    e = info.value
    assert (e.what, e.indices, e.step, e.batch) == ("score", [1, 3], 2, 4)
    assert isinstance(e, IQABenchError)


def test_a_finite_score_with_a_non_finite_gradient_is_refused():
    model, x = LumaCliff(), _grey([10, 140])
    assert torch.isfinite(model(x)).all()
    with pytest.raises(NonFiniteError) as info:  # outside counting_steps: no step number
        gain_and_grad(model, x)
    assert (info.value.what, info.value.indices, info.value.step) == ("gradient", [1], None)


@pytest.mark.parametrize("attack,levels,step", [
    (FGSM(eps=0.1), [100, 131], 1),  # one step, on the clean image
    (IFGSM(), [100, 128], 4), (MIFGSM(), [100, 128], 4), (PGD(eps=0.1, step=1 / 255), [100, 128], 4),
    (Korhonen(lr=1 / 255), [100, 128], 4),  # a flat image's map is 1; Adam's steps are lr on a constant gradient
    (MADC(lr=1 / 255), [100, 130], 2),  # its first step is a plain sign step (later ones are projected)
], ids=lambda v: getattr(v, "name", None))
def test_every_gradient_attack_stops_at_the_first_non_finite_step(attack, levels, step):
    with counting_steps(), pytest.raises(NonFiniteError) as info:
        attack.perturb(LumaCliff(), _grey(levels))
    assert info.value.indices == [1] and info.value.what == "gradient"
    assert info.value.step == step


# --------------------------------------------------------------- the CLI ---
def test_the_cli_names_the_image_and_the_step_and_finishes_no_cell(invoke, tmp_path, plugin):
    plugin(Registers([LumaCliff]), "cliff-plugin")
    root = tmp_path / "imgs"
    root.mkdir()
    for name, level in (("a.png", 100), ("b.png", 128), ("c.png", 90)):
        Image.fromarray(np.full((16, 16, 3), level, np.uint8)).save(root / name)
    store = tmp_path / "s.sqlite"
    result = invoke(["run", "--store", str(store), "--no-leaderboard", "-q", "--model", "test-luma-cliff",
                     "--dataset", "folder", "--dataset-param", f"root={root}", "--dataset-param", "test_ratio=1.0",
                     "--attack", "ifgsm", "--batch-size", "3"])
    assert result.exit_code == 1
    errors = [line for line in result.output.strip().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "attack 'ifgsm'" in errors[0] and "step 4" in errors[0] and "'b.png'" in errors[0], errors[0]
    assert "a.png" not in errors[0] and "Traceback" not in result.output
    db = sqlite3.connect(store)
    assert db.execute("SELECT count(*) FROM cells WHERE status = 'done'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM images").fetchone()[0] == 0


# ------------------------------------------------------------- the store ---
def _no_constants(name):
    raise ValueError(f"bare {name} in JSON")


def test_summaries_with_nan_are_strict_json_and_readable_by_sqlite(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.start_cell("k", "adversarial", {"model": {"name": "m"}}, "run")
    store.finish_cell("k", {"robustness": float("nan"), "robustness_ci": [float("nan"), float("inf")],
                            "psnr": float("inf"), "abs_gain": 0.25, "nested": {"x": [1.0, float("-inf")]},
                            "arr": np.float64("nan"), "none": None})
    (text,) = store.db.execute("SELECT summary FROM cells WHERE key = 'k'").fetchone()
    parsed = json.loads(text, parse_constant=_no_constants)
    assert parsed["robustness"] is None and parsed["robustness_ci"] == [None, None]
    assert parsed["nested"] == {"x": [1.0, None]} and parsed["arr"] is None and parsed["abs_gain"] == 0.25
    assert store.db.execute("SELECT json_extract(summary, '$.abs_gain') FROM cells").fetchone()[0] == 0.25
    assert store.db.execute("SELECT json_extract(summary, '$.robustness') FROM cells").fetchone()[0] is None
    # read back as the store returns it: missing numbers are None
    assert store.cells_by_key("k")["summary"]["robustness"] is None


def test_a_universal_attack_trained_into_nan_is_an_error_not_a_result(invoke, tmp_path, plugin, monkeypatch):
    from models_for_tests import TinyData

    class LowCliff(LumaCliff):  # most of the tiny data's images lie beyond it: NaN gradients in training
        name = "test-low-cliff"
        cliff = 0.05

    plugin(Registers([LowCliff], [TinyData.make()]), "cliff-uap-plugin")
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "cache"))
    store = tmp_path / "s.sqlite"
    result = invoke(["run", "--store", str(store), "--no-leaderboard", "-q", "--model", "test-low-cliff",
                     "--dataset", "test-tiny-data", "--attack", "cumulative-uap", "--param", "size=32"])
    assert result.exit_code == 1
    errors = [line for line in result.output.strip().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "'cumulative-uap'" in errors[0] and "non-finite perturbation" in errors[0] and "'test-low-cliff'" in errors[0]
    assert not list((tmp_path / "cache" / "uaps").glob("*"))  # no NaN perturbation cached for a rerun
    assert sqlite3.connect(store).execute("SELECT count(*) FROM cells WHERE status = 'done'").fetchone()[0] == 0
