"""The experiment contract: how the runner drives one kind of attack.

An experiment kind is a class registered through the
``register_experiments`` hook under the name of the ``Attack.kind`` it
drives (``adversarial``, ``universal`` and ``backdoor`` are the core's own,
:mod:`iqabench.experiments`); a plugin adds a kind without touching the
core.  For every cell of a run whose attack has that kind the runner calls:

1. :meth:`Experiment.plan` -- build what the cell needs (models, trained
   artifacts: cached) and return the store cells it yields, each with the
   configuration its key is the hash of (an adversarial attack yields one
   cell, a universal one a cell per amplitude, a backdoor experiment one for
   the clean and one for the backdoored model);
2. for each planned cell that is not finished (or with ``--force``):
   :meth:`Experiment.evaluate`, which yields ``(batch index, rows)`` for
   the batches not stored yet -- the runner stores each batch as it comes,
   so a killed run resumes after the last one -- then
   :meth:`Experiment.summarise`, which turns all the cell's stored rows into
   its summary.

The runner owns the store, the manifest, skipping and ``--force``; an
experiment never touches them.  A row is a dict with ``name``, ``idx``,
``clean``, ``attacked`` and optionally ``psnr``, ``ssim``, ``linf``,
``bound`` and ``extra`` (a JSON-able dict): a row of the store's ``images``
table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

from ..artifacts import config_key
from .attacks import Attack
from .context import RunContext


@dataclass
class CellSpec:
    """One cell of a run, before anything is built."""

    model: str
    dataset: str
    attack: str
    seed: int = 0
    split: str = "test"
    batch_size: int = 16
    weights: str = "default"
    limit: int = 0  # 0: every image of the split
    train_limit: int = 0  # images a universal attack trains on (0: the whole train split)
    model_params: dict[str, Any] = field(default_factory=dict)
    dataset_params: dict[str, Any] = field(default_factory=dict)
    attack_params: dict[str, Any] = field(default_factory=dict)
    defense: str = "none"  # "none": the model as trained; else a registered defence
    defense_params: dict[str, Any] = field(default_factory=dict)
    quantise: bool = False  # score the attacked image as saved in 8 bits (--save-images)
    jpeg_quality: int = 0  # score it after JPEG re-encoding at this quality (0: none; implies quantise)
    # craft the attack on this model ({"model", "model_params", "weights"}) and score it on ``model``
    transfer_from: dict[str, Any] | None = None


@dataclass
class PlannedCell:
    """One store cell an experiment will evaluate.

    ``config`` is everything the result depends on (the cell's key is its
    hash: change nothing in it without meaning to); ``label`` names the cell
    in progress bars and messages; ``manifest`` adds entries to the cell's
    record in the run manifest; ``work`` holds whatever the experiment's own
    ``evaluate`` and ``summarise`` need (models, images, the perturbation).
    """

    config: dict
    label: str
    manifest: dict = field(default_factory=dict)
    work: Any = None

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @property
    def key(self) -> str:
        """The cell's key in the store: the hash of its configuration."""
        return config_key(self.config)


class Experiment:
    """One kind of experiment (see the module docstring).

    ``name`` is the ``Attack.kind`` it drives; ``transfers`` whether it can
    craft on one model and score on another; ``in_wildcard`` says whether
    ``--attack '*'`` (and a suite's ``attacks = ["*"]``) includes attacks of
    this kind.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    in_wildcard: ClassVar[bool] = False
    transfers: ClassVar[bool] = False  # whether its cells honour ``CellSpec.transfer_from``

    def plan(self, spec: CellSpec, attack: Attack, ctx: RunContext) -> list[PlannedCell]:
        raise NotImplementedError

    def shares(self, spec: CellSpec) -> list[Any]:
        """Identities (JSON-able) of the artifacts planning ``spec`` builds or
        loads that other cells' plans may need too.  An executor that plans
        cells in parallel plans a cell only after the first earlier cell that
        names one of its identities (that one builds the artifact, the later
        ones load it from the cache), so each artifact is built once -- but
        for a dataset, ``["dataset", name, params]``, that several cells
        name: a step that builds only the dataset does (so those cells do
        not wait for a whole other cell's plan, :mod:`iqabench.run.graph`).  The
        default: the cell's dataset, its model as built on that dataset
        (:func:`model_share`) and what :meth:`attack_shares` names for its
        attack.  Name what the plan builds and no more: a cell waits for the
        plans of every cell it shares an identity with."""
        return [["dataset", spec.dataset, spec.dataset_params], model_share(spec), *self.attack_shares(spec)]

    def attack_shares(self, spec: CellSpec) -> list[Any]:
        """The identities among :meth:`shares` of what planning ``spec`` builds or
        loads for its attack.  The default, the attack with its parameters,
        ``["attack", name, params]``: a kind that does not say what its plan
        fits for an attack (a backdoor's trigger, surrogate and victim) makes a
        cell wait for the first cell of the same attack.  A kind whose plan
        fits nothing for some attacks names less (the adversarial kind: only
        what :meth:`iqabench.contracts.Attack.shares` names)."""
        return [["attack", spec.attack, spec.attack_params]]

    def evaluate(self, cell: PlannedCell, ctx: RunContext, done: set[int]) -> Iterator[tuple[int, list[dict]]]:
        raise NotImplementedError

    def summarise(self, cell: PlannedCell, rows: list[dict], ctx: RunContext) -> dict:
        raise NotImplementedError


def model_share(spec: CellSpec) -> list[Any]:
    """The identity (:meth:`Experiment.shares`) of ``spec``'s model as built on its
    dataset, with its weights, seed and defence -- a trained or defended model
    is made from the cell's data -- and its fixed clean range, measured on it."""
    return ["model", spec.model, spec.model_params, spec.weights, spec.seed, spec.defense, spec.defense_params,
            spec.dataset, spec.dataset_params]
