"""The adversarial experiment kind: an attack perturbs each batch of test images
(``Attack.perturb``), one store cell per attack."""
from __future__ import annotations

from ..contracts import Attack, PlannedCell, RunContext
from .evasion import EvasionExperiment


class AdversarialExperiment(EvasionExperiment):
    name = "adversarial"
    description = "Perturb every test image with the attack (Attack.perturb); one cell"

    def cells(self, base: PlannedCell, attack: Attack, ctx: RunContext) -> list[PlannedCell]:
        source = base.work.source  # the model itself, or a transfer cell's source
        base.work.perturb = lambda x: attack.perturb(source, x)
        return [base]
