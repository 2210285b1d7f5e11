"""The adversarial experiment kind: an attack perturbs each batch of test images
(``Attack.perturb``), one store cell per attack.  Behind an input-purification
defence the attack is crafted on the model its attacker mode names
(:func:`iqabench.models.purified.attacker_model`).

Planning an adversarial cell builds its dataset and model (and a transfer
cell's source model) and asks the attack for its ``provenance``; it fits
nothing for the attack unless the attack says so (``Attack.shares``), so
cells of one attack on independent models plan in parallel."""
from __future__ import annotations

from typing import Any

from ..contracts import Attack, CellSpec, PlannedCell, RunContext
from ..models.purified import attacker_model
from ..registry import build_attack
from .evasion import EvasionExperiment


class AdversarialExperiment(EvasionExperiment):
    name = "adversarial"
    description = "Perturb every test image with the attack (Attack.perturb); one cell"

    def attack_shares(self, spec: CellSpec) -> list[Any]:
        """What the attack says its plan builds (``Attack.shares``: AMI-FGSM's NIQE
        fit; FGSM, PGD, ...: nothing), not the attack itself: else every cell
        of an attack would wait for the first one's plan, which may train a
        model for an hour (an NT sweep's models would not train in parallel)."""
        return build_attack(spec.attack, spec.attack_params).shares()

    def cells(self, base: PlannedCell, attack: Attack, ctx: RunContext) -> list[PlannedCell]:
        # the attacker's model: the cell's own (or a transfer cell's source), through an input defence as it knows it
        source = attacker_model(base.work.source)
        base.work.perturb = lambda x: attack.perturb(source, x)
        return [base]
