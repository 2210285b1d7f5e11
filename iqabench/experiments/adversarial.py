"""The adversarial experiment kind: an attack perturbs each batch of test images
(``Attack.perturb``), one store cell per attack.  Behind an input-purification
defence the attack is crafted on the model its attacker mode names
(:func:`iqabench.models.purified.attacker_model`)."""
from __future__ import annotations

from ..contracts import Attack, PlannedCell, RunContext
from ..models.purified import attacker_model
from .evasion import EvasionExperiment


class AdversarialExperiment(EvasionExperiment):
    name = "adversarial"
    description = "Perturb every test image with the attack (Attack.perturb); one cell"

    def cells(self, base: PlannedCell, attack: Attack, ctx: RunContext) -> list[PlannedCell]:
        # the attacker's model: the cell's own (or a transfer cell's source), through an input defence as it knows it
        source = attacker_model(base.work.source)
        base.work.perturb = lambda x: attack.perturb(source, x)
        return [base]
