"""A backdoored victim defended where a defender would defend it.

A post-training defence (fine-tuning, pruning) gets the trained victim and
the CLEAN dataset -- the defender's own benign data, of which it takes its
benign fraction of the train split.  A training-time defence (NT) replaces
the victim's training: a fresh model trained on the poisoned split with the
defence's loss and its own recipe (``profile``/``epochs``).  The defended
victim is cached under ``cache_dir("defended")`` like any defended model.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ...contracts import CellSpec, IQAModel
from ...models.defended import cached_defense, defended_artifact, recipe_of
from ...progress import console, paused
from ...registry import build_defense
from .plan import BackdoorPlan


def defended_victim(plan: BackdoorPlan, spec: CellSpec) -> tuple[IQAModel, Path, dict]:
    """The victim of ``plan`` defended with ``spec``'s defence (with the plan's
    run context: seed, device, progress).

    Post-training: keyed by the victim's weights digest, the data, the
    defence and the seed; training-time: by the victim's configuration plus
    the defence.  Returns the model, its weights path and the cell's
    ``"defense"`` entry.
    """
    ctx = plan.context.run
    defense = build_defense(spec.defense, spec.defense_params)
    t0 = time.perf_counter()
    with paused(ctx.bar):
        if defense.kind == "training":
            def start() -> IQAModel:  # only on a cache miss
                console.print(f"[dim]training victim {spec.model} under {spec.defense} on the poisoned split[/dim]")
                return plan.context.fresh_model()

            config = {"victim": plan.victim_config(), "seed": ctx.seed,
                      "recipe": recipe_of(plan.context.fresh_model(), defense),
                      "defense": {"name": spec.defense, "params": defense.params}}
            model, path = cached_defense(defense, spec, config, start, plan.poisoned, ctx,
                                         info={"victim": config["victim"]}, score_range=False)
        else:
            _, victim_path = plan.train_victim()
            model, path = defended_artifact(replace(spec, weights=str(victim_path)), plan.context.dataset, ctx,
                                            score_range=False)
    plan.timings["defense_s"] = time.perf_counter() - t0
    model.requires_grad_(False)
    return model, path, {"name": spec.defense, "params": defense.params, "kind": defense.kind}
