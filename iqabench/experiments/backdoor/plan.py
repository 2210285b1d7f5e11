"""A backdoor experiment up to the trained models: trigger, poisoning, victim, clean model.

:func:`plan_backdoor` makes the trigger (cached) and describes the
poisoning without running it; :func:`prepare_backdoor` trains (or reuses)
the victim and the clean model.  A defence reuses them through
:func:`prepare_named`, e.g.
``prepare_named(CellSpec("cnniqa", "embedded", "baiqa-p", attack_params={"profile": "quick"}))``,
then ``evaluate_backdoor(setup.victim, setup.context.dataset, items,
setup.trigger, setup.delta_max)`` before and after defending.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...artifacts import config_key
from ...contracts import BackdoorAttack, CellSpec, IQADataset, IQAModel, RunContext, Trigger
from ...data.views import PoisonedDataset
from ...errors import ModelError
from ...registry import build, build_attack
from .context import BackdoorContext


@dataclass
class BackdoorPlan:
    """An experiment up to the victim's training: context, trigger, poisoning.

    What the plain victim and a victim trained under a training-time defence
    are both made from.  ``poisoned()`` builds the poisoned training data
    (possibly expensive: C-BAIQA runs PGD per image), so it is only called
    when a model is actually trained, never on a cache hit.
    """

    trigger: Trigger
    trigger_identity: dict
    delta_max: float  # in the dataset's MOS units
    context: BackdoorContext
    poison_cfg: dict
    poisoned: Callable[[], IQADataset]
    timings: dict

    def victim_config(self) -> dict:
        """What the victim depends on (its artifact key, and that of a defended victim)."""
        return {**self.context.identity(), "role": "victim", "poison": self.poison_cfg}

    def train_victim(self) -> tuple[IQAModel, Path]:
        """The victim trained on the poisoned split with the model's recipe (cached)."""
        t0 = time.perf_counter()
        out = self.context.train_cached("victim", self.poisoned, {"poison": self.poison_cfg})
        self.timings["victim_s"] = time.perf_counter() - t0
        return out


@dataclass
class BackdoorSetup:
    """A prepared experiment: what a defence needs to re-evaluate a victim."""

    victim: IQAModel
    victim_path: Path
    clean: IQAModel
    clean_path: Path
    trigger: Trigger
    trigger_identity: dict
    delta_max: float  # in the dataset's MOS units
    context: BackdoorContext
    timings: dict


def plan_backdoor(attack: BackdoorAttack, spec: CellSpec, dataset: IQADataset, ctx: RunContext) -> BackdoorPlan:
    """Context and trigger (cached) and the poisoning (of ``spec``'s attack on
    its model, with ``ctx``'s seed), not yet run."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    context = BackdoorContext(spec.model, spec.model_params, dataset, ctx, attack.profile, attack.ratio)
    trigger = attack.make_trigger(context)
    trigger_id = attack.trigger_identity(context)
    times["trigger_s"] = time.perf_counter() - start
    params = {k: v for k, v in attack.key_params().items() if k not in attack.eval_params}
    poison_cfg = {"attack": spec.attack, "params": params, "trigger": trigger_id,
                  "subset": context.poison_subset_identity()}
    poison_key = config_key(poison_cfg)
    context.poisoning = poison_cfg

    def poisoned() -> IQADataset:
        t0 = time.perf_counter()
        poison = attack.poison(context, trigger, context.poison_items)
        times["poison_s"] = time.perf_counter() - t0
        return PoisonedDataset(dataset, context.split, poison, poison_key)

    return BackdoorPlan(trigger, trigger_id, attack.delta_max * context.delta_scale, context, poison_cfg, poisoned,
                        times)


def prepare_backdoor(attack: BackdoorAttack, spec: CellSpec, dataset: IQADataset, ctx: RunContext) -> BackdoorSetup:
    """Trigger, poisoned victim and clean model (each cached)."""
    plan = plan_backdoor(attack, spec, dataset, ctx)
    victim, victim_path = plan.train_victim()
    t0 = time.perf_counter()
    clean, clean_path = plan.context.clean_model()
    plan.timings["clean_s"] = time.perf_counter() - t0
    return BackdoorSetup(victim, victim_path, clean, clean_path, plan.trigger, plan.trigger_identity,
                         plan.delta_max, plan.context, plan.timings)


def prepare_named(spec: CellSpec, ctx: RunContext | None = None) -> BackdoorSetup:
    """:func:`prepare_backdoor` from the registered names of cell ``spec``
    (attack, model, dataset, their parameters and its seed)."""
    attack = build_attack(spec.attack, spec.attack_params)
    if getattr(attack, "kind", None) != "backdoor":
        raise ModelError(f"attack {spec.attack!r} is not a backdoor attack")
    dataset = build("dataset", spec.dataset, spec.dataset_params)
    return prepare_backdoor(attack, spec, dataset, (ctx or RunContext()).for_cell(spec))
