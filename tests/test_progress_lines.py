"""Progress and results when output is not a terminal (a log file, a pipe, CI).

A rich live display draws nothing there, so a piped run printed nothing for
hours and then a results table cut to 80 columns (``cnn…``, ``0.3…``): the
log held no number.  Off a terminal, progress becomes plain lines at most
every ``IQABENCH_PROGRESS_INTERVAL`` seconds per task (and when a task
completes), and tables print at their natural width.
"""
from __future__ import annotations

import io

import pytest
from rich.console import Console

import iqabench.progress as progress_mod


@pytest.fixture
def log_console(monkeypatch):
    """The progress console writing to a string, not a terminal; progress on."""
    out = io.StringIO()
    monkeypatch.setattr(progress_mod, "console", Console(file=out, force_terminal=False, width=80))
    monkeypatch.setenv("IQABENCH_PROGRESS", "1")
    return out


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_off_a_terminal_progress_is_plain_lines_at_the_interval(log_console, monkeypatch):
    monkeypatch.setenv("IQABENCH_PROGRESS_INTERVAL", "30")
    clock = Clock()
    with progress_mod.progress(True) as bar:
        bar.clock = clock
        task = bar.add_task("train hyperiqa", total=100)
        for step in range(100):
            clock.now += 1.0  # one second a step
            bar.update(task, advance=1, description=f"train hyperiqa 1/1 loss {step / 100:.3f}")
    lines = [line for line in log_console.getvalue().splitlines() if line.strip()]
    # 100 s of work at one line per 30 s, plus the line when the task completes
    assert 3 <= len(lines) <= 5, lines
    assert "100/100" in lines[-1]
    first = lines[0]
    assert "train hyperiqa" in first and "/100" in first and "ETA" in first


def test_advance_reports_too_and_a_finished_task_reports_once(log_console, monkeypatch):
    monkeypatch.setenv("IQABENCH_PROGRESS_INTERVAL", "0")
    with progress_mod.progress(True) as bar:
        task = bar.add_task("poison", total=3)
        for _ in range(3):
            bar.advance(task, 1)
        bar.advance(task, 0)
    text = log_console.getvalue()
    assert text.count("poison") == 3 and text.count("3/3") == 1


def test_a_task_that_does_not_advance_still_reports_at_the_interval_until_the_display_stops(log_console,
                                                                                          monkeypatch):
    """A C-BAIQA poisoning batch takes 20 minutes: its log must not fall silent."""
    import time

    monkeypatch.setenv("IQABENCH_PROGRESS_INTERVAL", "0.05")
    with progress_mod.progress(True) as bar:
        bar.add_task("poison (baiqa-c)", total=374)
        time.sleep(0.5)
    lines = [line for line in log_console.getvalue().splitlines() if "poison (baiqa-c): 0/374" in line]
    assert len(lines) >= 3, log_console.getvalue()
    time.sleep(0.2)  # stopped: no more lines
    assert log_console.getvalue().count("0/374") == len(lines)


def test_on_a_terminal_the_live_display_is_kept(monkeypatch):
    monkeypatch.setattr(progress_mod, "console", Console(file=io.StringIO(), force_terminal=True))
    monkeypatch.setenv("IQABENCH_PROGRESS", "1")
    assert not isinstance(progress_mod.progress(True), progress_mod.LineProgress)


def test_progress_switched_off_prints_nothing(log_console, monkeypatch):
    monkeypatch.setenv("IQABENCH_PROGRESS", "0")
    with progress_mod.progress(True) as bar:
        task = bar.add_task("train", total=2)
        bar.advance(task, 2)
    assert log_console.getvalue() == ""


def test_a_bad_interval_is_a_one_line_error(monkeypatch):
    from iqabench.errors import IQABenchError

    monkeypatch.setenv("IQABENCH_PROGRESS_INTERVAL", "soon")
    with pytest.raises(IQABenchError, match="IQABENCH_PROGRESS_INTERVAL"):
        progress_mod.line_interval()


def test_results_tables_print_in_full_off_a_terminal():
    from iqabench.cli.summaries import print_summaries

    out = io.StringIO()
    spec = {"model": "a-model-with-a-rather-long-name", "dataset": "embedded", "split": "test", "defense": "none"}
    summary = {"kind": "adversarial", "spec": spec, "attack": "ifgsm-with-a-long-label", "n": 48,
               "abs_gain": 0.123456, "rel_gain": 0.234567, "robustness": 1.234567, "wasserstein": 0.345678,
               "energy": 0.456789, "psnr": 34.5678, "score_rmse": 12.3456}
    print_summaries([summary], Console(file=out, force_terminal=False, width=80))
    text = out.getvalue()
    assert "…" not in text
    for figure in ("a-model-with-a-rather-long-name", "ifgsm-with-a-long-label", "0.1235", "0.2346", "1.2346",
                   "0.3457", "0.4568", "34.57", "12.346"):
        assert figure in text, figure


def test_a_resumed_tasks_eta_counts_only_the_work_done_since_it_resumed(log_console, monkeypatch):
    """A resumed C-BAIQA poisoning starts at 64/374 done: at 32 images per
    100 s its ETA is (374 - 96) / 0.32 s, not the 3x shorter figure that
    counting the kept batches as this run's speed gave."""
    monkeypatch.setenv("IQABENCH_PROGRESS_INTERVAL", "30")
    clock = Clock()
    with progress_mod.progress(True) as bar:
        bar.clock = clock
        task = bar.add_task("poison (baiqa-c)", total=374, completed=64)
        clock.now += 100.0
        bar.advance(task, 32)
    line = [line for line in log_console.getvalue().splitlines() if "96/374" in line][0]
    assert "ETA 0:14:28" in line, line  # 868.75 s
