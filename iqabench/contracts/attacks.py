"""The attack contract: what an attack returns and the objective it maximises.

``Attack.kind`` names the experiment that drives the attack (the
``register_experiments`` hook): ``adversarial`` attacks perturb a batch,
``universal`` ones are fitted once and applied, ``backdoor`` ones poison a
training split.  ``Attack.family`` groups attacks for the board's overview
(one column per family: its worst case, :mod:`iqabench.board.overview`);
:data:`FAMILIES` lists the known ones in the overview's order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

import torch

from .models import IQAModel


def normalised_gain(model: IQAModel, scores: torch.Tensor) -> torch.Tensor:
    """Scores mapped so that increasing them is always "better quality".

    Attacks maximise this; dividing by the clean range keeps step sizes
    comparable across models (REFERENCES.md 1: ``J = 1 - s/range``).
    """
    lo, hi = model.score_range or (0.0, 1.0)
    span = (hi - lo) or 1.0
    return model.direction * scores / span


#: the attack families the board knows, in the overview's column order; an attack may declare
#: another (a column after these), and one that declares none is a family of its own, named after it
FAMILIES = ("one-step", "iterative", "perceptual", "black-box", "universal", "purification", "backdoor")


@dataclass
class AttackResult:
    """Attacked images and the bound each one was held to; ``extra``: per
    image, entries for its row's ``extra`` (a black-box attack's queries)."""

    images: torch.Tensor
    bound: torch.Tensor  # per image, in the units of ``norm``
    norm: str  # "linf" | "l2" | "mse" | "l0" (pixels changed) | ...
    extra: list[dict[str, Any]] | None = None


class Attack:
    """An adversarial attack on a batch: ``attack(model, x) -> x_adv``.

    Parameters are dataclass fields of the subclass with defaults from
    REFERENCES.md.  ``kind`` names the experiment that drives the attack (``register_experiments``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "adversarial"  # "adversarial" | "universal" | "backdoor"
    #: the family the overview groups this attack in (:data:`FAMILIES`; "": none declared)
    family: ClassVar[str] = ""

    @classmethod
    def suits(cls, model: type[IQAModel]) -> bool:
        """Whether this attack applies to models of class ``model`` (default: all)."""
        return True

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        raise NotImplementedError

    def shares(self) -> list[Any]:
        """Identities (JSON-able) of what planning a cell of this attack builds or
        loads for the attack itself, whatever the cell -- a reference model it
        fits once and reports in its ``provenance`` (AMI-FGSM's NIQE fit), say.

        An executor that plans cells in parallel plans a cell after the first
        earlier cell that names one of its identities
        (:meth:`iqabench.contracts.Experiment.shares`, which adds these to the
        cell's): that one builds the artifact, the later ones load it.  The
        default, nothing: an attack that only perturbs batches builds nothing
        while a cell is planned, so its cells need not wait for one another --
        were the attack itself named, every FGSM cell would wait for the first
        FGSM cell's plan, which may train a defended model for an hour."""
        return []

    def __call__(self, model: IQAModel, x: torch.Tensor) -> torch.Tensor:
        return self.perturb(model, x).images


class UniversalAttack(Attack):
    """A universal adversarial perturbation (UAP): one perturbation for all images.

    ``fit`` trains the perturbation on batches of a training split (the
    runner caches the result as an artifact keyed by model, data, parameters
    and seed); ``apply`` adds it to test images at one amplitude.  The
    methodology evaluates amplitudes 0.2, 0.4 and 0.8 and reports each and
    their mean.
    """

    kind: ClassVar[str] = "universal"
    family: ClassVar[str] = "universal"
    amplitudes: ClassVar[tuple[float, ...]] = (0.2, 0.4, 0.8)

    def fit(self, model: IQAModel, batches: "Iterable[torch.Tensor]", device: str = "cpu") -> torch.Tensor:
        """Train and return the perturbation, shape 1x3xhxw."""
        raise NotImplementedError

    @staticmethod
    def apply(uap: torch.Tensor, x: torch.Tensor, amplitude: float) -> torch.Tensor:
        """``clamp(x + amplitude * tile(uap), 0, 1)`` -- the reference code
        forgot the clamp; we do not."""
        h, w = x.shape[-2:]
        reps = (1, 1, -(-h // uap.shape[-2]), -(-w // uap.shape[-1]))
        tiled = uap.to(x.device, x.dtype).repeat(*reps)[..., :h, :w]
        return (x + amplitude * tiled).clamp(0.0, 1.0)

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        raise NotImplementedError("universal attacks are fitted once, then applied: see fit/apply")

