"""Representative, seeded subsets of a dataset split (``--limit``).

A limited run must see what the whole split holds.  Datasets order their
items in blocks (the embedded split: 26 versions of one crop in a row), so
evenly spaced items are not a sample: they keep hitting the same position
of every block.  :func:`subset` stratifies instead, over the two strata an
:class:`~iqabench.contracts.Item` can name:

* its content, ``item.ref`` (the photograph it shows), and
* its group, ``item.group`` (e.g. the distortion type; ``""``: none).

Allocation is proportional and controlled-rounded: with ``e = limit *
size / total`` the proportional share of a (content, group) cell, every
cell gets ``floor(e)`` or ``ceil(e)`` images, and so does every content and
every group as a whole (each within +-1 of its proportional share) while
the total is exactly ``limit``.  A plain largest-remainder rounding of the
cells cannot promise the marginals (on the embedded test split, 48 of 624
images: each photograph x distortion cell's share is 2.31, and the four
extra seats land wherever the tie-break puts them -- possibly all on one
photograph); controlled rounding of a two-way table always exists (Cox
1987) and is found here as a feasible integer flow.  Which cells round up,
and which items fill each cell, follow a seeded pseudo-random order.

The order is a hash of the seed and the item's name (not a library's
random generator), so a subset depends on nothing but the seed, the
limit and the items -- not on the numpy/torch/Python version, nor on the
order the dataset lists its items.  A dimension in which every item is its
own stratum (datasets that set ``ref`` to the image name) or in which
there is one stratum carries no information and is ignored; with neither
dimension the subset is a seeded random draw.  ``limit`` 0 or at least the
number of items returns every item, in order.

:data:`SCHEME` names this scheme in the keys of everything computed on a
limited subset, so rows measured on another subset are never reused.
"""
from __future__ import annotations

import hashlib
from collections import deque
from fractions import Fraction
from math import ceil, floor
from typing import Sequence, TypeVar

from ..errors import ParameterError

#: recorded in cell and artifact keys whenever a subset (not every item) is used
SCHEME = "stratified-v1"

T = TypeVar("T")


def sampling_key(limit: int, available: int) -> dict[str, str]:
    """``{"sampling": SCHEME}`` when ``limit`` takes a subset of ``available``
    items, ``{}`` when it takes them all (so whole-split keys stay as they were)."""
    return {"sampling": SCHEME} if 0 < limit < available else {}


def subset(items: Sequence[T], limit: int, seed: int = 0) -> list[T]:
    """At most ``limit`` of ``items`` (0: all), stratified by content and
    group, in their original order (module docstring)."""
    return [items[i] for i in subset_indices(items, limit, seed)]


def subset_indices(items: Sequence, limit: int, seed: int = 0) -> list[int]:
    """The positions in ``items`` of :func:`subset` (ascending)."""
    n = len(items)
    if not limit or limit >= n:
        return list(range(n))
    if limit < 0:
        raise ParameterError(f"limit must be >= 0, got {limit}")
    rows = _strata([getattr(it, "ref", "") for it in items])
    cols = _strata([getattr(it, "group", "") for it in items])
    cells: dict[tuple[str, str], list[int]] = {}
    for i in range(n):
        cells.setdefault((rows[i], cols[i]), []).append(i)
    counts = _controlled_rounding({c: len(v) for c, v in cells.items()}, limit, seed)
    chosen: list[int] = []
    for cell, members in cells.items():
        ranked = sorted(members, key=lambda i: (_rank(seed, "item", getattr(items[i], "name", str(i))), i))
        chosen += ranked[: counts[cell]]
    return sorted(chosen)


def _strata(labels: list[str]) -> list[str]:
    """``labels``, or one stratum for all when they carry no grouping
    (every label distinct, or all the same)."""
    distinct = len(set(labels))
    return labels if 1 < distinct < len(labels) else [""] * len(labels)


def _rank(seed: int, *parts: str) -> bytes:
    """A seeded pseudo-random sort key, stable across platforms and versions."""
    return hashlib.sha256("\0".join((str(seed), *parts)).encode()).digest()


def _controlled_rounding(sizes: dict[tuple[str, str], int], limit: int, seed: int) -> dict[tuple[str, str], int]:
    """Per (row, column) cell, ``floor`` or ``ceil`` of ``limit * size / total``,
    with every row and column total also ``floor`` or ``ceil`` of its share and
    the grand total exactly ``limit``.

    The floors are fixed; the cells that round up are a 0/1 flow from rows to
    columns whose row and column sums lie between the floor and the ceiling of
    their fractional parts' sums -- a circulation with lower bounds, which
    exists because the proportional table itself is a fractional one.
    """
    total = sum(sizes.values())
    share = {c: Fraction(limit * s, total) for c, s in sizes.items()}
    base = {c: floor(e) for c, e in share.items()}
    frac = {c: e - base[c] for c, e in share.items()}
    order = lambda keys: sorted(keys, key=lambda k: _rank(seed, "stratum", *k))  # noqa: E731
    up_cells = order([c for c, f in frac.items() if f])
    rows = order({(c[0],) for c in sizes})
    cols = order({(c[1],) for c in sizes})
    row_frac = {r: sum((f for c, f in frac.items() if c[0] == r[0]), Fraction(0)) for r in rows}
    col_frac = {k: sum((f for c, f in frac.items() if c[1] == k[0]), Fraction(0)) for k in cols}
    extra = limit - sum(base.values())

    flow = _Flow()
    flow.edge("S", "T", 0, 0)  # keep S and T in the graph when nothing rounds up
    for r in rows:
        flow.edge("S", ("r", r), floor(row_frac[r]), ceil(row_frac[r]))
    for k in cols:
        flow.edge(("c", k), "T", floor(col_frac[k]), ceil(col_frac[k]))
    cell_edges = {c: flow.edge(("r", (c[0],)), ("c", (c[1],)), 0, 1) for c in up_cells}
    flow.edge("T", "S", extra, extra)
    if not flow.feasible():  # cannot happen (see the docstring); a guard, not a fallback
        raise AssertionError("controlled rounding found no feasible allocation")
    return {c: base[c] + (flow.flow(cell_edges[c]) if c in cell_edges else 0) for c in sizes}


class _Flow:
    """A small circulation-with-lower-bounds solver (max flow by BFS augmenting paths)."""

    def __init__(self) -> None:
        self.adj: dict[object, list[int]] = {}
        self.to: list[object] = []
        self.cap: list[int] = []
        self.low: list[int] = []
        self.excess: dict[object, int] = {}

    def _arc(self, u: object, v: object, cap: int) -> int:
        self.adj.setdefault(u, []).append(len(self.to))
        self.to.append(v)
        self.cap.append(cap)
        self.adj.setdefault(v, []).append(len(self.to))
        self.to.append(u)
        self.cap.append(0)
        return len(self.to) - 2

    def edge(self, u: object, v: object, low: int, high: int) -> int:
        """An edge carrying between ``low`` and ``high`` units; returns its id."""
        e = self._arc(u, v, high - low)
        self.low += [low, 0]
        self.excess[v] = self.excess.get(v, 0) + low
        self.excess[u] = self.excess.get(u, 0) - low
        return e

    def flow(self, e: int) -> int:
        return self.low[e] + self.cap[e ^ 1]

    def feasible(self) -> bool:
        need = 0
        for node, x in list(self.excess.items()):
            if x > 0:
                self._arc("SS", node, x)
                need += x
            elif x < 0:
                self._arc(node, "TT", -x)
        return self._max_flow("SS", "TT") == need

    def _max_flow(self, s: object, t: object) -> int:
        total = 0
        while True:
            parent: dict[object, int] = {s: -1}
            queue = deque([s])
            while queue and t not in parent:
                u = queue.popleft()
                for e in self.adj.get(u, []):
                    if self.cap[e] > 0 and self.to[e] not in parent:
                        parent[self.to[e]] = e
                        queue.append(self.to[e])
            if t not in parent:
                return total
            push, v = None, t
            while v != s:
                e = parent[v]
                push = self.cap[e] if push is None else min(push, self.cap[e])
                v = self.to[e ^ 1]
            v = t
            while v != s:
                e = parent[v]
                self.cap[e] -= push
                self.cap[e ^ 1] += push
                v = self.to[e ^ 1]
            total += push
