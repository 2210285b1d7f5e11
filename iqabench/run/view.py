"""One live view of a distributed run's plan: cells done / running / queued,
per node, and the time left from the measured cell times.

It is a task of the run's progress display (:mod:`iqabench.progress`: a
live bar on a terminal, plain lines elsewhere) whose description carries the
counts, updated whenever a cell starts or ends.
"""
from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlanView:
    """``bar``: the run's progress display (None: no view); ``slots``: how many
    cells the cluster runs at once (for the ETA)."""

    bar: Any = None
    slots: int = 1
    planned: int = 0
    done: int = 0
    running: dict[str, str] = field(default_factory=dict)  # cell key -> node
    finished_on: Counter = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    def __post_init__(self):
        self.task = self.bar.add_task("plan", total=0) if self.bar is not None else None

    @property
    def queued(self) -> int:
        return self.planned - self.done - len(self.running)

    def add(self, n: int = 1) -> None:
        self.planned += n
        self._show()

    def start(self, key: str, node: str) -> None:
        self.running[key] = node
        self._show()

    def finish(self, key: str, node: str | None = None, seconds: float | None = None) -> None:
        node = node or self.running.get(key, "-")
        self.running.pop(key, None)
        self.done += 1
        self.finished_on[node] += 1
        if seconds is not None:
            self.seconds.append(seconds)
        self._show()

    def eta(self) -> float | None:
        """Seconds left: the mean measured cell time x the cells left / the slots."""
        if not self.seconds:
            return None
        left = self.queued + len(self.running)
        return sum(self.seconds) / len(self.seconds) * -(-left // max(1, self.slots))

    def describe(self) -> str:
        nodes = Counter(self.running.values())
        per_node = ", ".join(f"{n}: {nodes[n]} running, {self.finished_on[n]} done"
                             for n in sorted(set(nodes) | set(self.finished_on)))
        eta = self.eta()
        left = "-:--:--" if eta is None else str(datetime.timedelta(seconds=int(eta)))
        return (f"cells: {self.done} done, {len(self.running)} running, {self.queued} queued"
                f"{' | ' + per_node if per_node else ''} | ETA from cell times {left}")

    def _show(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, description=self.describe(), total=self.planned, completed=self.done)
