"""Which ready cell a distributed run starts next: the longest expected first.

Run in the order they were planned, the cells of a large grid leave a tail:
a slow model's long cell that starts last keeps every other worker idle
until it ends (the simulation in ``bench/scale.py``: 87% of the ideal on 64
GPUs for the MSU-sized grid in plan order, 99% longest first).  The driver
therefore keeps the ready cells itself, gives the cluster only as many as it
has slots, and starts the one expected to take longest: the mean measured
time of the finished cells of the same model and attack, else of the same
attack, else of the same model.  A cell with no estimate yet goes first (it
may be long, and its time teaches the estimates); ties keep the plan's order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean
from typing import Any


def _names(config: dict) -> tuple[Any, Any]:
    return (config.get("model") or {}).get("name"), (config.get("attack") or {}).get("name")


@dataclass
class CellQueue:
    """Ready cells (their configuration and whatever the executor needs to start them)."""

    ready: list[tuple[int, dict, Any]] = field(default_factory=list)
    times: dict[tuple, list[float]] = field(default_factory=dict)
    _order: int = 0

    def __len__(self) -> int:
        return len(self.ready)

    def push(self, config: dict, payload: Any) -> None:
        self.ready.append((self._order, config, payload))
        self._order += 1

    def record(self, config: dict, seconds: float) -> None:
        """A finished cell's measured time."""
        model, attack = _names(config)
        for key in (("cell", model, attack), ("attack", attack), ("model", model)):
            self.times.setdefault(key, []).append(seconds)

    def estimate(self, config: dict) -> float | None:
        model, attack = _names(config)
        for key in (("cell", model, attack), ("attack", attack), ("model", model)):
            if key in self.times:
                return mean(self.times[key])
        return None

    def pop(self) -> Any:
        """The payload of the ready cell expected to take longest (unknown: first)."""
        def rank(entry):
            est = self.estimate(entry[1])
            return (est is not None, -(est or 0.0), entry[0])

        best = min(self.ready, key=rank)
        self.ready.remove(best)
        return best[2]
