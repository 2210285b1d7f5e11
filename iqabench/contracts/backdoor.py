"""The backdoor contract: a data-poisoning attack asks for a trigger and a
poisoned training split; the backdoor experiment (:mod:`iqabench.experiments.backdoor`)
does everything else -- the surrogate, the victim's training, the clean
model, the evaluation -- the same way for every attack and model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from .attacks import Attack
from .datasets import Item
from .triggers import Trigger


@dataclass
class Poison:
    """What an attack did to the training split.

    ``images`` maps an item name to its poisoned image (3xHxW in [0,1]),
    ``labels`` to its (possibly shifted) label, ``alphas`` to the trigger
    strength it was given.  ``info`` records how (for the manifest).
    """

    images: dict[str, torch.Tensor]
    labels: dict[str, float]
    alphas: dict[str, float]
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.images) != set(self.labels) or set(self.images) != set(self.alphas):
            raise ValueError("a Poison needs an image, a label and an alpha for every poisoned item")


class BackdoorAttack(Attack):
    """A data-poisoning backdoor: a trigger and a poisoned training split.

    Subclasses are dataclasses with at least the fields ``ratio`` (poisoned
    fraction of the training split), ``delta_max`` (score shift at alpha = 1
    on a 0-100 MOS scale) and ``profile``.  ``label_mode`` is ``"poison"``
    (labels shifted) or ``"clean"`` (labels untouched).

    ``ctx`` is the experiment's :class:`iqabench.experiments.backdoor.BackdoorContext`:
    the data, the model to copy and its recipe, the poison subset, the
    surrogate (trained on demand), the device and the seed.
    """

    kind: ClassVar[str] = "backdoor"
    family: ClassVar[str] = "backdoor"
    label_mode: ClassVar[str] = "poison"
    #: parameters that only change the evaluation, not the victim (left out of its key)
    eval_params: ClassVar[tuple[str, ...]] = ("eval_images",)
    #: parameters added after cells were first stored, with the value that
    #: computes what those cells computed: at that value a parameter is left
    #: out of every key (:meth:`key_params`), so the stored cells stay valid
    key_neutral: ClassVar[dict[str, Any]] = {}
    ratio: float
    delta_max: float
    profile: str

    def key_params(self) -> dict:
        """``params`` as keys record them: without parameters at their :attr:`key_neutral` value."""
        params = getattr(self, "params", {})
        return {k: v for k, v in params.items() if not (k in self.key_neutral and v == self.key_neutral[k])}

    def trigger_identity(self, ctx: "BackdoorContext") -> dict:
        """What determines the trigger (for artifact and cell keys)."""
        raise NotImplementedError

    def make_trigger(self, ctx: "BackdoorContext") -> Trigger:
        """The trigger, ready to ``apply`` (cache anything expensive)."""
        raise NotImplementedError

    def poison(self, ctx: "BackdoorContext", trigger: Trigger, items: list[Item]) -> Poison:
        """Poisoned images, labels and alphas of ``items`` (the poison subset)."""
        raise NotImplementedError
