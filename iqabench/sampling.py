"""Deterministic subsets of a dataset split."""
from __future__ import annotations


def spread(items: list, limit: int) -> list:
    """At most ``limit`` items spread evenly over ``items`` (0: all), so a
    limited run still sees every content of the split, deterministically."""
    if not limit or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]
