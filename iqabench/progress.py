"""One style of progress report for every long loop.

On a terminal: a rich live display with ETA.  Anywhere else (a log file, a
pipe, CI) a live display draws nothing, so a long run would print nothing
for hours: :class:`LineProgress` reports the same tasks as plain lines, at
most one per task every ``IQABENCH_PROGRESS_INTERVAL`` seconds (default
30) and one when a task completes -- also while a task does not advance
(a 20-minute poisoning batch), so a log shows the run is alive and how long
the step has taken.  ``IQABENCH_PROGRESS=0`` silences both.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)

from .errors import IQABenchError

console = Console(stderr=True, soft_wrap=True)  # a log keeps long lines whole

#: seconds between two plain progress lines of one task, off a terminal
DEFAULT_LINE_INTERVAL = 30.0


def _env_number(name: str, default: float, unit: str) -> float:
    """The number (>= 0, finite) in environment variable ``name``, or ``default``."""
    text = os.environ.get(name, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise IQABenchError(f"{name} must be a number of {unit} >= 0, got {text!r}")
    return value


def line_interval() -> float:
    """``IQABENCH_PROGRESS_INTERVAL`` in seconds (>= 0)."""
    return _env_number("IQABENCH_PROGRESS_INTERVAL", DEFAULT_LINE_INTERVAL, "seconds")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    return str(datetime.timedelta(seconds=int(seconds)))


class LineProgress(Progress):
    """A :class:`rich.progress.Progress` that prints plain lines instead of
    drawing (see the module docstring); ``clock`` is swappable for tests.
    While started, a daemon thread reports every unfinished task that has
    printed nothing for ``interval`` (a task that advances reports itself)."""

    def __init__(self, interval: float, **kwargs) -> None:
        super().__init__(disable=True, **kwargs)
        self.interval = interval
        self.clock = time.monotonic
        self._started: dict[TaskID, float] = {}
        self._last: dict[TaskID, float] = {}
        self._finished: set[TaskID] = set()
        self._resumed: dict[TaskID, float] = {}
        self._quiet: threading.Event | None = None

    def start(self) -> None:
        super().start()
        if self.interval > 0 and self._quiet is None:
            self._quiet = threading.Event()
            threading.Thread(target=self._heartbeat, args=(self._quiet,), daemon=True,
                             name="iqabench-progress-lines").start()

    def stop(self) -> None:
        if self._quiet is not None:
            self._quiet.set()
            self._quiet = None
        super().stop()

    def _heartbeat(self, quiet: threading.Event) -> None:
        while not quiet.wait(self.interval):
            with self._lock:
                for task_id in list(self._tasks):
                    self._report(task_id)

    def add_task(self, description: str, *args, **kwargs) -> TaskID:
        """A task; one added with ``completed`` > 0 resumes work finished
        earlier, which its rate (hence its ETA) leaves out."""
        task_id = super().add_task(description, *args, **kwargs)
        self._started[task_id] = self._last[task_id] = self.clock()
        self._resumed[task_id] = self._tasks[task_id].completed
        return task_id

    def update(self, task_id: TaskID, **kwargs) -> None:
        super().update(task_id, **kwargs)
        self._report(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._report(task_id)

    def _report(self, task_id: TaskID) -> None:
        """A line when the task completes, else when ``interval`` has passed."""
        with self._lock:  # the heartbeat thread reports too
            if task_id in self._finished or task_id not in self._tasks:
                return
            task, now = self._tasks[task_id], self.clock()
            done = task.total is not None and task.completed >= task.total
            if not done and now - self._last[task_id] < self.interval:
                return
            self._last[task_id] = now
            if done:
                self._finished.add(task_id)
            self.console.print(self._line(task_id, now), markup=False, highlight=False, soft_wrap=True)

    def _line(self, task_id: TaskID, now: float) -> str:
        task = self._tasks[task_id]
        elapsed = now - self._started[task_id]
        total = task.total
        if total:
            share = task.completed / total
            rate = (task.completed - self._resumed[task_id]) / elapsed if elapsed > 0 else 0.0
            eta = (total - task.completed) / rate if rate > 0 else None
            counts = f"{task.completed:g}/{total:g} ({100 * share:.1f}%)"
        else:
            eta, counts = None, f"{task.completed:g}"
        return (f"[{time.strftime('%H:%M:%S')}] {task.description}: {counts}, "
                f"{_duration(elapsed)} elapsed, ETA {_duration(eta)}")


def progress(enabled: bool = True) -> Progress:
    """A progress display: live on a terminal, plain lines elsewhere;
    off with ``enabled=False`` or ``IQABENCH_PROGRESS=0``."""
    disable = not enabled or os.environ.get("IQABENCH_PROGRESS", "1") == "0"
    if not disable and not console.is_terminal:
        return LineProgress(line_interval(), console=console)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )


def download_progress(enabled: bool = True) -> Progress:
    """The same display for a download: bytes done of the size, speed, ETA."""
    disable = not enabled or os.environ.get("IQABENCH_PROGRESS", "1") == "0"
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=disable, transient=False)


@contextlib.contextmanager
def paused(bar: "Progress | None"):
    """Stop a live progress display while a nested one (e.g. a trainer's) runs."""
    live = bar is not None and getattr(bar, "live", None) is not None and bar.live.is_started
    if live:
        bar.stop()
    try:
        yield
    finally:
        if live:
            bar.start()


# ----------------------------------------------------------- cost notice ---
#: estimated minutes of work from which a run says what it will cost
DEFAULT_NOTICE_MINUTES = 30.0


def notice_minutes() -> float:
    """``IQABENCH_COST_NOTICE_MINUTES`` (>= 0; 0: always announce)."""
    return _env_number("IQABENCH_COST_NOTICE_MINUTES", DEFAULT_NOTICE_MINUTES, "minutes")


@dataclass
class WorkAhead:
    """Training steps an experiment may still run beyond the training at hand
    (an experiment declares its trainings, and withdraws those it finds
    cached), so the first timed steps estimate the whole experiment."""

    steps: int = 0

    def expect(self, steps: int) -> None:
        self.steps += max(0, int(steps))

    def withdraw(self, steps: int) -> None:
        self.steps = max(0, self.steps - max(0, int(steps)))


_AHEAD: ContextVar[WorkAhead | None] = ContextVar("iqabench_work_ahead", default=None)


@contextlib.contextmanager
def work_ahead():
    """A fresh account of the work ahead for the block (the runner opens one per cell)."""
    token = _AHEAD.set(WorkAhead())
    try:
        yield _AHEAD.get()
    finally:
        _AHEAD.reset(token)


def current_work_ahead() -> WorkAhead:
    """The account the block runs in (a throwaway one outside any)."""
    return _AHEAD.get() or WorkAhead()


class CostMeter:
    """Times a trainer's steps and, once ``sample`` steps after the first
    (a warm-up) are timed, announces the estimate when it exceeds
    ``IQABENCH_COST_NOTICE_MINUTES``: this training's remaining time, and
    the whole experiment's with the steps declared in :class:`WorkAhead`."""

    warmup: int = 1
    sample: int = 3

    def __init__(self, label: str, steps: int, device: str, cheaper: str) -> None:
        self.label, self.steps, self.device, self.cheaper = label, steps, device, cheaper
        self.ahead = current_work_ahead()
        self.ahead.withdraw(steps)  # this training was declared: it is at hand now
        self.clock = time.perf_counter
        self.done = 0
        self.t0: float | None = None
        self.estimate_s: float | None = None

    def step(self) -> None:
        self.done += 1
        if self.done == self.warmup:
            self.t0 = self.clock()
        elif self.t0 is not None and self.estimate_s is None and self.done == self.warmup + self.sample:
            per_step = (self.clock() - self.t0) / self.sample
            this = per_step * (self.steps - self.done)
            self.estimate_s = this + per_step * self.ahead.steps
            if self.estimate_s >= 60 * notice_minutes():
                console.print(self.notice(per_step, this), markup=False, highlight=False, soft_wrap=True)

    def notice(self, per_step: float, this: float) -> str:
        whole = "" if not self.ahead.steps else (
            f"; with up to {self.ahead.steps} more training steps this experiment declared "
            f"(cached models are skipped), about {_duration(self.estimate_s)} in all")
        return (f"estimate: {self.label} takes about {_duration(this)} more on {self.device} "
                f"({per_step:.2f} s per step, {self.steps} steps){whole}. Cheaper: {self.cheaper}. "
                "Finished models and cells are kept: stop with Ctrl-C and rerun to resume.")
