"""The cost notice: work estimated (from a few timed steps) above
``IQABENCH_COST_NOTICE_MINUTES`` (default 30) is announced once, with the
device and the cheaper alternatives, and the run proceeds (issue 14, item 5)."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

import iqabench.progress as progress_mod
from iqabench.errors import IQABenchError
from iqabench.progress import CostMeter, work_ahead


@pytest.fixture
def notices(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(progress_mod, "console", Console(file=out, force_terminal=False, width=80))
    monkeypatch.delenv("IQABENCH_COST_NOTICE_MINUTES", raising=False)
    return out


def _run(meter: CostMeter, steps: int, seconds_per_step: float) -> None:
    meter.clock = lambda: meter.done * seconds_per_step  # each step takes seconds_per_step
    for _ in range(steps):
        meter.step()


def test_work_over_the_threshold_is_announced_once_with_its_estimate(notices):
    meter = CostMeter("training hyperiqa", 1000, "cpu", "--profile quick, --device cuda")
    _run(meter, 50, 2.0)
    text = notices.getvalue()
    # 2 s per step over 3 timed steps; 996 steps left after the warm-up and the sample
    assert meter.estimate_s == pytest.approx(2.0 * 996)
    assert text.count("estimate:") == 1
    assert "0:33:12" in text and "on cpu" in text and "2.00 s per step" in text and "--device cuda" in text


def test_work_under_the_threshold_is_not_announced(notices):
    meter = CostMeter("training cnniqa", 100, "cpu", "--profile quick")
    _run(meter, 10, 2.0)
    assert meter.estimate_s == pytest.approx(2.0 * 96)
    assert notices.getvalue() == ""


def test_declared_trainings_ahead_count_in_the_estimate(notices):
    with work_ahead() as ahead:
        ahead.expect(300)  # e.g. a victim
        ahead.expect(500)  # and a clean model
        meter = CostMeter("training x", 300, "cuda", "--profile quick")  # the victim: at hand now
        assert ahead.steps == 500
        _run(meter, 4, 4.0)
    assert meter.estimate_s == pytest.approx(4.0 * (296 + 500))
    assert "500 more training steps" in notices.getvalue()


def test_the_threshold_is_configurable_and_checked(notices, monkeypatch):
    monkeypatch.setenv("IQABENCH_COST_NOTICE_MINUTES", "0")
    _run(CostMeter("training y", 10, "cpu", "--profile quick"), 5, 0.01)
    assert "estimate:" in notices.getvalue()
    monkeypatch.setenv("IQABENCH_COST_NOTICE_MINUTES", "half an hour")
    with pytest.raises(IQABenchError, match="IQABENCH_COST_NOTICE_MINUTES"):
        progress_mod.notice_minutes()


def test_the_trainer_announces_its_cost(notices, monkeypatch):
    """train_model times its own steps: with the threshold at 0 its notice names
    the model, the device and the smaller recipe."""
    from dataclasses import replace

    from iqabench.models.training import train_model, training_steps
    from models_for_tests import TinyConvIQA, TinyData

    monkeypatch.setenv("IQABENCH_COST_NOTICE_MINUTES", "0")
    model, data = TinyConvIQA(), TinyData.make(n_train=12, n_test=2)()
    recipe = replace(model.recipe(), epochs=2)
    summary = train_model(model, data, recipe, seed=0, progress=False)
    assert summary["steps"] == training_steps(recipe, 12) == 6
    text = notices.getvalue()
    assert "training test-tiny-cnn" in text and "on cpu" in text and "--profile quick" in text
