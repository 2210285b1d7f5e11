"""The example plugin's experiment kind: how far a benign transform moves a score.

An attack of kind ``"stability"`` is a transform that should leave an image's
quality as it is (here a one-pixel shift); the ``stability`` experiment
scores every test image before and after it and stores both, one row per
image, and summarises the mean absolute change in score units.  It is
registered through the ``register_experiments`` hook: the core runs it
without knowing it exists.
"""
from dataclasses import dataclass

import numpy as np
import torch

import iqabench
from iqabench.contracts import Attack, AttackResult, Experiment, PlannedCell
from iqabench.data.sampling import subset


@dataclass
class CyclicShift(Attack):
    """Shift the image ``pixels`` columns to the right, wrapping around."""

    name = "example-shift"
    description = "Shift the image by `pixels` columns, wrapping around (a benign transform)."
    kind = "stability"
    pixels: int = 1

    def perturb(self, model, x):
        shifted = torch.roll(x, self.pixels, dims=-1)
        return AttackResult(shifted, (shifted - x).abs().flatten(1).amax(1), "linf")


class StabilityExperiment(Experiment):
    """One store cell per (model, dataset, transform): the clean and the
    transformed score of every image."""

    name = "stability"
    description = "How far a benign transform moves the score (mean absolute change, in score units)."

    def plan(self, spec, attack, ctx):
        def build():
            return iqabench.get_model(spec.model, spec.weights, ctx.device, spec.seed, **spec.model_params)

        model = ctx.reuse(["example-model", spec.model, spec.model_params, spec.weights, spec.seed], build)
        data = iqabench.get_dataset(spec.dataset, **spec.dataset_params)
        items = subset(list(data.items(spec.split)), spec.limit, spec.seed)
        # everything the rows depend on: the cell's key is the hash of this
        config = {"kind": self.name,
                  "model": {"name": spec.model, "params": spec.model_params, "weights": model.weights},
                  "dataset": {"name": spec.dataset, "fingerprint": data.fingerprint(), "split": spec.split,
                              "limit": spec.limit},
                  "attack": {"name": spec.attack, "params": attack.params}, "seed": spec.seed}
        return [PlannedCell(config, f"{spec.model} x {spec.attack}", work=(model, data, items, attack))]

    def evaluate(self, cell, ctx, done):
        if 0 in done:  # the only batch is stored already
            return
        model, data, items, attack = cell.work
        rows = []
        with torch.no_grad():
            for i, item in enumerate(items):
                x = data.load(item).unsqueeze(0).to(ctx.device)
                rows.append({"name": item.name, "idx": i, "clean": float(model(x)),
                             "attacked": float(model(attack.perturb(model, x).images))})
        yield 0, rows

    def summarise(self, cell, rows, ctx):
        change = np.abs([r["attacked"] - r["clean"] for r in rows])
        return {"kind": self.name, "attack": cell.config["attack"]["name"], "n": len(rows),
                "mean_abs_change": float(change.mean()), "max_abs_change": float(change.max())}
