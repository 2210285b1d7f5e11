"""The live view of a distributed run: cells done / running / queued, per
node, and the time left from the measured cell times (plain lines off a
terminal, like every progress display)."""
from __future__ import annotations

import io

from rich.console import Console

import iqabench.progress as progress_mod
from iqabench.run.view import PlanView


def test_counts_per_node_and_eta_from_measured_cell_times():
    view = PlanView(slots=2)
    view.add(5)
    assert view.describe().startswith("cells: 0 done, 0 running, 5 queued") and view.eta() is None
    view.start("a", "node-1")
    view.start("b", "node-2")
    view.finish("a", "node-1", 10.0)
    view.start("c", "node-1")
    view.finish("b", "node-2", 20.0)
    # 3 cells left (1 running, 2 queued) on 2 slots: 2 rounds of the mean cell time (15 s)
    assert view.eta() == 30.0
    assert view.describe() == ("cells: 2 done, 1 running, 2 queued | node-1: 1 running, 1 done, "
                               "node-2: 0 running, 1 done | ETA from cell times 0:00:30")


def test_off_a_terminal_the_view_is_plain_lines(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(progress_mod, "console", Console(file=out, force_terminal=False, width=80))
    monkeypatch.setenv("IQABENCH_PROGRESS", "1")
    monkeypatch.setenv("IQABENCH_PROGRESS_INTERVAL", "0")
    with progress_mod.progress(True) as bar:
        view = PlanView(bar, slots=1)
        view.add(2)
        view.start("a", "n1")
        view.finish("a", "n1", 4.0)
        view.finish("b", "n1", 4.0)
    lines = out.getvalue().splitlines()
    assert lines and all("\x1b" not in line for line in lines)  # no terminal codes
    assert "cells: 1 done, 0 running, 1 queued | n1: 0 running, 1 done | ETA from cell times 0:00:04" in out.getvalue()
    assert lines[-1].split("] ", 1)[1].startswith("cells: 2 done, 0 running, 0 queued")
