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
later one depends on that step.  Only what a plan builds is named -- an
attack only when its plan fits something for it (a UAP, a NIQE fit:
``Experiment.attack_shares``, ``Attack.shares``) -- since every shared
identity is a wait: cells of FGSM on independent models plan at once.  A
dataset that several cells name (``["dataset", name, params]``) is the
exception: a :class:`DatasetStep` of its own builds it, and nothing else
-- were it built by the first cell's plan, every cell on that dataset would
wait for that whole plan (which may train a model for an hour) although it
needs only the dataset.  Edges point to earlier steps only: the graph has no
cycle.  Once a step has run, its
store cells (one per amplitude, ...) are known and can be evaluated in any
order.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace

from ..artifacts import canonical_json
from ..contracts import CellSpec
from ..registry import build_attack
from .plan import baseline_spec, experiment_kind


@dataclass
class DatasetStep:
    """Building or loading dataset ``name`` with ``params`` -- and only that: the
    light step that the plans of the cells sharing the dataset wait for."""

    name: str
    params: dict

    @property
    def ident(self) -> str:
        """Its identity as :func:`shares` names it."""
        return canonical_json(["dataset", self.name, self.params])


@dataclass
class Step:
    """Planning one cell of the run: ``index`` in the run's cells, the
    ``deps`` (indices of earlier cells' steps) and the ``datasets`` steps it
    waits for."""

    index: int
    spec: CellSpec
    deps: list[int] = field(default_factory=list)
    datasets: list[DatasetStep] = field(default_factory=list)

    @property
    def label(self) -> str:
        s = self.spec
        defended = f" [{s.defense}]" if s.defense != "none" else ""
        return f"{s.model}{defended} x {s.attack} on {s.dataset}"


def shares(spec: CellSpec) -> list[str]:
    """The artifact identities planning ``spec`` builds or loads (canonical JSON, each once)."""
    kind = experiment_kind(build_attack(spec.attack, spec.attack_params), spec.attack)
    out = list(kind().shares(spec))
    twin = baseline_spec(spec)
    if twin is not None:  # the defended model is normalised with its baseline's range
        out += experiment_kind(build_attack(twin.attack, twin.attack_params), twin.attack)().shares(twin)
    return list(dict.fromkeys(canonical_json(x) for x in out))  # the twin's repeats: no step waits for itself


def _dataset(ident: str) -> DatasetStep | None:
    """The dataset an identity names when it is only a dataset, ``["dataset", name, params]``."""
    x = json.loads(ident)
    return DatasetStep(x[1], x[2]) if isinstance(x, list) and len(x) == 3 and x[0] == "dataset" else None


def steps(cells: list[CellSpec], indices: list[int] | None = None) -> list[Step]:
    """One step per cell, each depending on the first earlier step that
    builds one of the artifacts it shares -- but for a dataset several cells
    share, which its own :class:`DatasetStep` builds (the module docstring).
    ``indices``: each cell's index in the run (default: its position), which
    the steps' ``index`` and ``deps`` then name -- for a run that plans only
    some of its cells."""
    named = [shares(spec) for spec in cells]
    cells_naming = Counter(ident for idents in named for ident in idents)
    builder: dict[str, int] = {}
    loaders: dict[str, DatasetStep] = {}
    out: list[Step] = []
    for i, (spec, idents) in enumerate(zip(cells, named)):
        deps: set[int] = set()
        datasets: dict[str, DatasetStep] = {}
        for ident in idents:
            if cells_naming[ident] > 1 and (dataset := _dataset(ident)) is not None:
                datasets[ident] = loaders.setdefault(ident, dataset)
            elif ident in builder:
                deps.add(builder[ident])
            else:
                builder[ident] = i
        for d in sorted(deps):  # its deps wrote only what they built beyond their datasets: it needs those too
            datasets.update((x.ident, x) for x in out[d].datasets)
        out.append(Step(i, spec, sorted(deps), list(datasets.values())))
    if indices is None:
        return out
    if len(indices) != len(cells):
        raise ValueError(f"steps: {len(indices)} indices for {len(cells)} cells")
    return [replace(s, index=indices[s.index], deps=[indices[d] for d in s.deps]) for s in out]


def depth(graph: list[Step]) -> int:
    """The longest chain of cells' planning steps (1: none waits for another
    cell's).  The dataset steps before them are light and not counted: this
    is how many (possibly hour-long) plans run one after another."""
    level: dict[int, int] = {}
    for s in graph:
        level[s.index] = 1 + max((level[d] for d in s.deps), default=0)
    return max(level.values(), default=0)
