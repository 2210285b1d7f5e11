"""The universal experiment kind: a perturbation fitted once on the train split
(a cached artifact), tiled onto the test images at each of the attack's
amplitudes -- one store cell per amplitude (the methodology reports each and
their mean).  Behind an input-purification defence the perturbation is fitted on
the model the attacker mode names (:func:`iqabench.models.purified.attacker_model`):
non-adaptive, the undefended model's own cached perturbation."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ..artifacts import building, cache_dir, canonical_json, config_key, load_state, save_state
from ..contracts import AttackResult, CellSpec, IQADataset, IQAModel, Item, PlannedCell, RunContext, UniversalAttack
from ..contracts.experiments import model_share
from ..data.sampling import sampling_key, subset
from ..errors import ModelError
from ..models.build import model_identity
from ..models.defended import baseline_spec
from ..models.training import reproducible
from ..models.purified import attacker_model
from ..registry import NO_DEFENSE, build_attack, build_defense
from .checks import load_checked
from .evasion import EvasionExperiment, source_spec


#: CPU threads a universal perturbation trains on.  Multi-threaded CPU kernels
#: split their reductions by thread count, so without a fixed count one
#: configuration (one key) gave different perturbations under different
#: ``OMP_NUM_THREADS`` (``tests/test_uap_threads.py``).  In the key.
FIT_THREADS = 1


class BatchSource:
    """Re-iterable batches of a split, loaded lazily (a UAP makes several
    passes; holding a whole split on the device would waste memory)."""

    def __init__(self, items: list[Item], batch_size: int, device: str, load):
        self.items, self.batch_size, self.device, self.load = items, batch_size, device, load

    def __len__(self) -> int:
        return -(-len(self.items) // self.batch_size)

    def __iter__(self):
        for i in range(0, len(self.items), self.batch_size):
            chunk = [self.load(it) for it in self.items[i: i + self.batch_size]]
            for shape in dict.fromkeys(tuple(c.shape) for c in chunk):  # equal sizes stack
                yield torch.stack([c for c in chunk if tuple(c.shape) == shape]).to(self.device)


def fit_universal(attack: UniversalAttack, model: IQAModel, dataset: IQADataset, spec: CellSpec,
                  ctx: RunContext) -> tuple[torch.Tensor, str]:
    """Train the universal perturbation on the training split once (``spec.train_limit``
    images of it), then reuse the cached artifact in every later run; returns it and its key."""
    train_split = "train" if "train" in dataset.splits() else spec.split
    pool = list(dataset.items(train_split))
    cfg = {"model": model_identity(model), "dataset": dataset.fingerprint(), "split": train_split,
           "train_limit": spec.train_limit, **sampling_key(spec.train_limit, len(pool)), "attack": spec.attack,
           "params": attack.params, "seed": spec.seed, "batch_size": spec.batch_size, "fit_threads": FIT_THREADS}
    key = config_key(cfg)
    path = cache_dir("uaps") / f"{spec.attack}-{key}.safetensors"
    with building(path) as missing:  # two runs that need it at once: one fits, the other loads
        if not missing:
            return load_state(path)["uap"].to(ctx.device), key
        source = BatchSource(subset(pool, spec.train_limit, spec.seed), spec.batch_size, ctx.device,
                             lambda item: load_checked(dataset, item, model))
        torch.manual_seed(spec.seed)
        with reproducible(FIT_THREADS):
            uap = attack.fit(model, source, ctx.device).detach()
        if not torch.isfinite(uap).all():  # never cache (or apply) a NaN perturbation
            raise ModelError(f"attack {spec.attack!r}: training produced a non-finite perturbation (model "
                             f"{spec.model!r} gave a non-finite score or gradient on the {train_split!r} split)")
        save_state(path, {"uap": uap}, {"config": canonical_json(cfg)})
    return uap, key


class UniversalExperiment(EvasionExperiment):
    name = "universal"
    description = "Fit one perturbation on the train split (cached), add it to every test image at each amplitude"

    def attack_shares(self, spec: CellSpec) -> list[Any]:
        """The perturbation the plan fits (:func:`fit_universal`), named by what its
        key depends on: the attack with its parameters, the model it is fitted
        on (:func:`fitted_on`, as built on the cell's dataset with the cell's
        seed), ``train_limit`` and ``batch_size`` -- so a cell waits for the
        first cell fitting the same perturbation, and not for a cell fitting
        another one on another model (whose plan may train that model for an
        hour).  Plus what the attack itself names (``Attack.shares``)."""
        attack = build_attack(spec.attack, spec.attack_params)
        return [["uap", spec.attack, spec.attack_params, model_share(fitted_on(spec)), spec.train_limit,
                 spec.batch_size], *attack.shares()]

    def cells(self, base: PlannedCell, attack: UniversalAttack, ctx: RunContext) -> list[PlannedCell]:
        uap, artifact = fit_universal(attack, attacker_model(base.work.source), base.work.dataset, base.work.spec, ctx)

        def perturb(x: torch.Tensor, amplitude: float) -> AttackResult:
            bound = torch.full((x.shape[0],), amplitude * float(uap.abs().max()))
            return AttackResult(attack.apply(uap, x, amplitude), bound, "linf")

        return [PlannedCell({**base.config, "attack": {**base.config["attack"], "amplitude": a, "artifact": artifact}},
                            f"{base.label} @ {a}", base.manifest,
                            replace(base.work, perturb=lambda x, a=a: perturb(x, a)))
                for a in attack.amplitudes]


def fitted_on(spec: CellSpec) -> CellSpec:
    """The cell whose model ``spec``'s perturbation is fitted on, as
    :meth:`UniversalExperiment.cells` picks it (``attacker_model`` of the cell's
    source): a transfer cell's source (:func:`~.evasion.source_spec`); behind a
    non-adaptive input defence, the bare model's cell (its baseline, whose
    cached perturbation it applies); else the cell itself."""
    source = source_spec(spec)
    if source is not None:
        return source
    if spec.defense != NO_DEFENSE:
        defense = build_defense(spec.defense, spec.defense_params)
        if defense.kind == "inference" and not getattr(defense, "adaptive", False):
            return baseline_spec(spec) or spec
    return spec
