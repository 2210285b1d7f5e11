"""The plan of a run as a dependency graph: which cells' plans build the
artifacts that other cells need.

Planning a cell (``Experiment.plan``) builds or loads everything it needs:
the dataset, the (trained, defended) model, a fitted UAP, a NIQE fit, a
trigger, a backdoored victim -- each cached by the hash of its
configuration.  Run one after another (the local executor) the first cell
builds an artifact and the later ones load it.  Run in parallel, two plans
that need the same artifact would both build it; so each cell's plan is a
:class:`Step` that waits for the steps that build what it shares
(``Experiment.shares``, and its like-for-like baseline's, which its
normalisation loads): the first step naming an identity builds it, every
later one depends on that step.  Edges point to earlier steps only: the
graph has no cycle.  Once a step has run, its store cells (one per
amplitude, ...) are known and can be evaluated in any order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..artifacts import canonical_json
from ..contracts import CellSpec
from ..registry import build_attack
from .plan import baseline_spec, experiment_kind


@dataclass
class Step:
    """Planning one cell of the run: ``index`` in the run's cells, the
    ``deps`` (indices of earlier steps) it waits for."""

    index: int
    spec: CellSpec
    deps: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        s = self.spec
        defended = f" [{s.defense}]" if s.defense != "none" else ""
        return f"{s.model}{defended} x {s.attack} on {s.dataset}"


def shares(spec: CellSpec) -> list[str]:
    """The artifact identities planning ``spec`` builds or loads (canonical JSON)."""
    kind = experiment_kind(build_attack(spec.attack, spec.attack_params), spec.attack)
    out = list(kind().shares(spec))
    twin = baseline_spec(spec)
    if twin is not None:  # the defended model is normalised with its baseline's range
        out += experiment_kind(build_attack(twin.attack, twin.attack_params), twin.attack)().shares(twin)
    return [canonical_json(x) for x in out]


def steps(cells: list[CellSpec]) -> list[Step]:
    """One step per cell, each depending on the first earlier step that
    builds one of the artifacts it shares."""
    builder: dict[str, int] = {}
    out = []
    for i, spec in enumerate(cells):
        deps = []
        for ident in shares(spec):
            if ident in builder:
                deps.append(builder[ident])
            else:
                builder[ident] = i
        out.append(Step(i, spec, sorted(set(deps))))
    return out


def depth(graph: list[Step]) -> int:
    """The longest chain of steps (1: none waits for another)."""
    level: dict[int, int] = {}
    for s in graph:
        level[s.index] = 1 + max((level[d] for d in s.deps), default=0)
    return max(level.values(), default=0)
