"""Backdoor experiments: poison -> train the victim -> evaluate (no attack named).

The contract :class:`BackdoorAttack` asks a plugin for two things: its
trigger (:meth:`~BackdoorAttack.make_trigger`, e.g. an optimised UAP-DCT
pattern or a fixed baseline) and the poisoning of the training split
(:meth:`~BackdoorAttack.poison`).  Everything else is the harness's job and
is the same for every attack and every trainable model:

1. the poison subset (``attack.ratio`` of the training split, seeded);
2. a *surrogate* -- the same architecture trained clean on that subset only,
   as the attacker of BAIQA has it -- on demand, cached;
3. the *victim*: a fresh model trained on the poisoned training split with
   the model's own recipe (:func:`iqabench.training.train_model`, unchanged:
   the harness plays the unsuspecting trainer), cached as an artifact keyed
   by its full configuration, so a defence can load and re-evaluate it;
4. the *clean* model ("w/o" row): the same recipe and seed on the clean data
   (shared with ``iqabench train``'s cache, or the shipped weights when their
   card shows they were trained exactly so);
5. both evaluated with :func:`iqabench.backdoor_metrics.evaluate_backdoor`
   and stored per image and per alpha (one store cell each; the trigger on
   ``attack.eval_images`` test images, 0 = all, the benign metrics on all).

With a defence (``--defense``), :func:`defended_victim` applies it where a
defender would -- to the trained victim with clean data (post-training) or
to the victim's training on the poisoned split (training-time) -- and the
defended victim is one more cell, keyed apart from the undefended ones.

``attack.profile`` (``quick`` | ``default`` | ``paper``) picks the model's
recipe of that name (falling back to ``default`` when the model has none)
for the surrogate, the victim and the clean model.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from .artifacts import cache_dir, config_key, file_digest, save_state, write_json
from .backdoor_metrics import TEST_ALPHAS, WHOLE_IMAGE, EvalCrops, evaluate_backdoor
from .contracts import Attack, IQADataset, IQAModel, Item, TrainRecipe, Trigger
from .errors import DatasetError, ModelError
from .models import build_model, card_path
from .poisoning import Poison, PoisonedDataset, SubsetDataset, mos_scale, poison_indices
from .progress import console
from .sampling import sampling_key, subset
from .training import train_model

TRAIN_SPLIT = "train"
PROFILES = ("quick", "default", "paper")


class BackdoorAttack(Attack):
    """A data-poisoning backdoor: a trigger and a poisoned training split.

    Subclasses are dataclasses with at least the fields ``ratio`` (poisoned
    fraction of the training split), ``delta_max`` (score shift at alpha = 1
    on a 0-100 MOS scale) and ``profile``.  ``label_mode`` is ``"poison"``
    (labels shifted) or ``"clean"`` (labels untouched).
    """

    kind: ClassVar[str] = "backdoor"
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

    def evaluation_crops(self, ctx: "BackdoorContext", seed: int) -> EvalCrops | None:
        """How predictions are made in the evaluation: ``eval_crops`` random
        crops of side ``eval_crop`` (None: the recipe's training crop, as the
        release's ``patch_size`` serves both), or None: whole images."""
        n = int(getattr(self, "eval_crops", 0) or 0)
        if not n:
            return None
        return EvalCrops(n, int(getattr(self, "eval_crop", None) or ctx.recipe.crop), seed=seed)

    def trigger_identity(self, ctx: "BackdoorContext") -> dict:
        """What determines the trigger (for artifact and cell keys)."""
        raise NotImplementedError

    def make_trigger(self, ctx: "BackdoorContext") -> Trigger:
        """The trigger, ready to ``apply`` (cache anything expensive)."""
        raise NotImplementedError

    def poison(self, ctx: "BackdoorContext", trigger: Trigger, items: list[Item]) -> Poison:
        """Poisoned images, labels and alphas of ``items`` (the poison subset)."""
        raise NotImplementedError


@contextlib.contextmanager
def paused(bar):
    """Stop a live progress display while a nested one (the trainer's) runs."""
    live = bar is not None and getattr(bar, "live", None) is not None and bar.live.is_started
    if live:
        bar.stop()
    try:
        yield
    finally:
        if live:
            bar.start()


def recipe_for(model: IQAModel, profile: str) -> tuple[str, TrainRecipe]:
    """The model's recipe named ``profile``, else its ``default`` one."""
    try:
        return profile, model.recipe(profile)
    except ModelError:
        if profile == "default":
            raise
        return "default", model.recipe("default")


@dataclass
class BackdoorContext:
    """Everything an attack may use: the data, the model to copy, caches."""

    model_name: str
    model_params: dict[str, Any]
    dataset: IQADataset
    seed: int = 0
    device: str = "cpu"
    profile: str = "default"
    ratio: float = 0.2
    bar: Any = None
    show_progress: bool = True
    split: str = TRAIN_SPLIT
    _surrogate: IQAModel | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.split not in self.dataset.splits():
            raise DatasetError(f"dataset {self.dataset.name!r} has no {self.split!r} split to poison")
        probe = build_model(self.model_name, self.model_params, "random", "cpu", self.seed)
        self.recipe_profile, self.recipe = recipe_for(probe, self.profile)
        self.resolved_params = getattr(probe, "params", self.model_params)
        self.train_items = [it for it in self.dataset.items(self.split) if it.mos is not None]
        self.poison_items = [self.train_items[i] for i in poison_indices(len(self.train_items), self.ratio, self.seed)]
        self.delta_scale = mos_scale(self.dataset)

    # ------------------------------------------------------------- identity
    def identity(self) -> dict:
        """The configuration every artifact of this experiment depends on."""
        return {"model": self.model_name, "params": self.resolved_params, "dataset": self.dataset.fingerprint(),
                "recipe": asdict(self.recipe), "recipe_profile": self.recipe_profile, "seed": self.seed}

    def poison_subset_identity(self) -> dict:
        return {"ratio": self.ratio, "items": config_key([it.name for it in self.poison_items])}

    # ------------------------------------------------------------- training
    def train_cached(self, role: str, data: Callable[[], IQADataset], extra: dict) -> tuple[IQAModel, Path]:
        """Train a fresh model on ``data()`` with the recipe (once), cached
        under ``cache_dir(role + "s")``; ``data`` is only called on a miss."""
        cfg = {**self.identity(), "role": role, **extra}
        key = config_key(cfg)
        path = cache_dir(f"{role}s") / f"{self.model_name}-{key}.safetensors"
        if not (path.exists() and card_path(path).exists()):
            dataset = data()
            model = build_model(self.model_name, self.model_params, "random", self.device, self.seed)
            console.print(f"[dim]training {role} {self.model_name} ({self.recipe_profile} recipe) -> {path.name}[/dim]")
            with paused(self.bar):
                summary = train_model(model, dataset, self.recipe, self.seed, self.device, self.show_progress)
            save_state(path, model.state_dict(), metadata={"role": role, "model": self.model_name, "key": key})
            write_json(card_path(path), {"role": role, "config": cfg, "train": summary, "torch": torch.__version__})
        model = build_model(self.model_name, self.model_params, path, self.device, self.seed)
        model.requires_grad_(False)
        return model, path

    def clean_model(self) -> tuple[IQAModel, Path]:
        """The model trained clean with the same recipe and seed ("w/o").

        The very artifact ``iqabench train`` caches (same key, same card), or
        the model's shipped weights when their card says they were trained
        exactly so (same recipe, seed, parameters and data): training is
        reproducible, so retraining would give the same weights.  A card
        from before ``TrainRecipe.threads`` (no ``threads`` in its recipe)
        matches any thread count: its weights are that recipe's clean model
        up to float-level differences, and the cell records their digest.
        """
        from .training import train_and_save

        shipped = self._shipped_clean()
        if shipped is not None:
            path = shipped
        else:
            key = config_key({"model": self.model_name, "params": self.resolved_params,
                              "dataset": self.dataset.fingerprint(), "recipe": asdict(self.recipe), "seed": self.seed})
            path = cache_dir("models") / f"{self.model_name}-{self.dataset.name}-{key}.safetensors"
            if not (path.exists() and card_path(path).exists()):
                model = build_model(self.model_name, self.model_params, "random", self.device, self.seed)
                console.print(f"[dim]training clean {self.model_name} ({self.recipe_profile} recipe) -> {path.name}[/dim]")
                with paused(self.bar):
                    # no score range: the backdoor metrics never normalise, and scoring
                    # every image of every split would cost a large model minutes
                    train_and_save(model, self.dataset, self.recipe, self.seed, path, self.device, self.show_progress,
                                   params=self.resolved_params, score_range=False)
        model = build_model(self.model_name, self.model_params, path, self.device, self.seed)
        model.requires_grad_(False)
        return model, path

    def _shipped_clean(self) -> Path | None:
        import json

        probe = build_model(self.model_name, self.model_params, "random", "cpu", self.seed)
        path = probe.pretrained_weights()
        if path is None or not card_path(path).exists():
            return None
        card = json.loads(card_path(path).read_text())
        recipe = asdict(self.recipe)
        if "threads" not in (card.get("recipe") or {}):  # trained before the setting existed
            recipe.pop("threads")
        same = (card.get("recipe") == recipe and card.get("seed") == self.seed
                and card.get("dataset_fingerprint") == self.dataset.fingerprint()
                and card.get("params") == self.resolved_params)
        return Path(path) if same else None

    def surrogate(self) -> IQAModel:
        """The attacker's model: the same architecture trained clean on the
        poison subset only (REFERENCES.md 2), with the victim's recipe,
        cached.  (The BAIQA release trains a HyperIQA surrogate with 5 crops
        per image, not 25, and uses it against every victim architecture.)"""
        if self._surrogate is None:
            names = [it.name for it in self.poison_items]
            self._surrogate, _ = self.train_cached(
                "surrogate", lambda: SubsetDataset(self.dataset, self.split, names), self.poison_subset_identity())
        return self._surrogate

    def load(self, items: list[Item]) -> list[torch.Tensor]:
        return [self.dataset.load(it) for it in items]


# ---------------------------------------------------------- the experiment
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


def plan_backdoor(attack: BackdoorAttack, attack_name: str, model_name: str, model_params: dict,
                  dataset: IQADataset, seed: int = 0, device: str = "cpu", bar=None,
                  show_progress: bool = True) -> BackdoorPlan:
    """Context and trigger (cached) and the poisoning, not yet run."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    ctx = BackdoorContext(model_name, model_params, dataset, seed, device, attack.profile, attack.ratio,
                          bar, show_progress)
    trigger = attack.make_trigger(ctx)
    trigger_id = attack.trigger_identity(ctx)
    times["trigger_s"] = time.perf_counter() - start
    params = {k: v for k, v in attack.key_params().items() if k not in attack.eval_params}
    poison_cfg = {"attack": attack_name, "params": params, "trigger": trigger_id,
                  "subset": ctx.poison_subset_identity()}
    poison_key = config_key(poison_cfg)

    def poisoned() -> IQADataset:
        t0 = time.perf_counter()
        poison = attack.poison(ctx, trigger, ctx.poison_items)
        times["poison_s"] = time.perf_counter() - t0
        return PoisonedDataset(dataset, ctx.split, poison, poison_key)

    return BackdoorPlan(trigger, trigger_id, attack.delta_max * ctx.delta_scale, ctx, poison_cfg, poisoned, times)


def prepare_backdoor(attack: BackdoorAttack, attack_name: str, model_name: str, model_params: dict,
                     dataset: IQADataset, seed: int = 0, device: str = "cpu", bar=None,
                     show_progress: bool = True) -> BackdoorSetup:
    """Trigger, poisoned victim and clean model (each cached)."""
    plan = plan_backdoor(attack, attack_name, model_name, model_params, dataset, seed, device, bar, show_progress)
    victim, victim_path = plan.train_victim()
    t0 = time.perf_counter()
    clean, clean_path = plan.context.clean_model()
    plan.timings["clean_s"] = time.perf_counter() - t0
    return BackdoorSetup(victim, victim_path, clean, clean_path, plan.trigger, plan.trigger_identity,
                         plan.delta_max, plan.context, plan.timings)


def prepare_named(attack: str, model: str, dataset: str, attack_params: dict | None = None,
                  model_params: dict | None = None, dataset_params: dict | None = None, seed: int = 0,
                  device: str = "cpu", show_progress: bool = True) -> BackdoorSetup:
    """:func:`prepare_backdoor` from registered names -- what a defence calls
    to get the (cached) victim, the clean model and the trigger, e.g.
    ``prepare_named("baiqa-p", "cnniqa", "embedded", {"profile": "quick"})``,
    then ``evaluate_backdoor(setup.victim, setup.context.dataset, items,
    setup.trigger, setup.delta_max)`` before and after defending."""
    from .params import resolve_params
    from .plugins import lookup
    from .runner import build_attack

    att = build_attack(attack, attack_params)
    if getattr(att, "kind", None) != "backdoor":
        raise ModelError(f"attack {attack!r} is not a backdoor attack")
    ds_entry = lookup("dataset", dataset)
    ds = ds_entry.obj(**resolve_params(ds_entry.obj, dataset_params or {}, f"dataset {dataset!r}"))
    return prepare_backdoor(att, attack, model, model_params or {}, ds, seed, device, None, show_progress)


def image_rows(result: dict) -> list[list[dict]]:
    """Store rows, one batch per alpha: first alpha 0 (the clean prediction
    of every image, for the benign metrics), then one per test alpha (the
    triggered images).  A row is named ``<image>@<alpha>``; ``bound`` holds
    alpha, ``clean`` the clean prediction, ``attacked`` the triggered one."""
    names, mos, y0 = result["images"], result["mos"], result["y0"]

    def row(i: int, idx: int, alpha: float, attacked: float, psnr: float | None) -> dict:
        return {"name": f"{names[i]}@{alpha:+.1f}", "idx": idx, "clean": float(y0[i]), "attacked": attacked,
                "psnr": psnr, "ssim": None, "linf": None, "bound": float(alpha),
                "extra": {"image": names[i], "alpha": float(alpha), "mos": float(mos[i])}}

    batches = [[row(i, i, 0.0, float(y0[i]), None) for i in range(len(names))]]
    offset = len(names)
    for alpha, ya in result["y"].items():
        batches.append([row(i, offset + k, alpha, float(ya[k]), float(result["psnr"][alpha][k]))
                        for k, i in enumerate(result["subset"])])
        offset += len(result["subset"])
    return batches


def run_backdoor_cell(runner, spec, attack: BackdoorAttack, run_id: str, manifest: dict, bar) -> list[dict]:
    """The runner's branch for ``kind == "backdoor"``.

    Undefended (``spec.defense == "none"``): two cells, the clean model
    ("w/o") and the backdoored victim, each evaluated under the trigger.
    Defended: one cell, the victim as the defender leaves it (see
    :func:`defended_victim`); its configuration names the defence, so it
    never collides with the undefended cells, whose keys stay as they were.
    """
    from .defended import NONE

    dataset = runner.dataset(spec)
    labelled = [it for it in dataset.items(spec.split) if it.mos is not None]
    items = subset(labelled, spec.limit, spec.seed)
    sampled = sampling_key(spec.limit, len(labelled)) or sampling_key(_trigger_images(attack), len(items))
    if not items:
        raise DatasetError(f"dataset {spec.dataset!r}: split {spec.split!r} has no labelled images")
    if spec.defense != NONE:
        plan = plan_backdoor(attack, spec.attack, spec.model, spec.model_params, dataset, spec.seed,
                             runner.device, bar, runner.show_progress)
        model, path, defense = defended_victim(plan, spec, runner.device, bar, runner.show_progress)
        cfg = {**_victim_config(spec, attack, dataset, plan, path, sampled), "defense": defense}
        label = f"{spec.model} x {spec.attack} (backdoored +{spec.defense}) on {spec.dataset}/{spec.split}"
        return [_evaluate_and_store(runner, cfg, model, path, dataset, items, plan, spec, run_id, manifest, bar,
                                    label)]
    setup = prepare_backdoor(attack, spec.attack, spec.model, spec.model_params, dataset, spec.seed,
                             runner.device, bar, runner.show_progress)
    victim_cfg = _victim_config(spec, attack, dataset, setup, setup.victim_path, sampled)
    clean_cfg = {**victim_cfg, "victim": "clean", "attack": {"name": "w/o", "trigger": setup.trigger_identity["name"]},
                 "model": {**victim_cfg["model"], "weights": _weights_id(setup.clean_path)}}
    out = []
    for cfg, model, path in ((clean_cfg, setup.clean, setup.clean_path), (victim_cfg, setup.victim, setup.victim_path)):
        label = f"{spec.model} x {cfg['attack']['name']} ({cfg['victim']}) on {spec.dataset}/{spec.split}"
        out.append(_evaluate_and_store(runner, cfg, model, path, dataset, items, setup, spec, run_id, manifest,
                                       bar, label))
    return out


def _trigger_images(attack: BackdoorAttack) -> int:
    return int(getattr(attack, "eval_images", 0) or 0)


def _victim_config(spec, attack: BackdoorAttack, dataset: IQADataset, setup: BackdoorPlan | BackdoorSetup,
                   weights: Path, sampled: dict | None = None) -> dict:
    """The undefended victim cell's configuration (its key must not change:
    stored results rely on it); the clean and defended cells derive from it.
    Evaluation crops (``profile=paper``) add an ``eval_crops`` entry; whole-image
    evaluation adds nothing.
    ``sampled``: :func:`iqabench.sampling.sampling_key` of the evaluated
    subsets (empty when every image is evaluated and triggered)."""
    ctx = setup.context
    crops = attack.evaluation_crops(ctx, spec.seed)
    return {
        "kind": "backdoor",
        "dataset": {"name": spec.dataset, "params": spec.dataset_params, "split": spec.split,
                    "limit": spec.limit, "fingerprint": dataset.fingerprint(), **(sampled or {})},
        "defense": None, "seed": spec.seed, "batch_size": spec.batch_size,
        "trigger": setup.trigger_identity, "delta_max": setup.delta_max, "alphas": list(TEST_ALPHAS),
        "trigger_images": _trigger_images(attack),
        "victim": "backdoored",
        "attack": {"name": spec.attack, "params": attack.key_params(), "label_mode": attack.label_mode,
                   "trigger": setup.trigger_identity["name"]},
        "model": {"name": spec.model, "params": ctx.resolved_params, "recipe_profile": ctx.recipe_profile,
                  "recipe": asdict(ctx.recipe), "weights": _weights_id(weights)},
        **({"eval_crops": crops.describe()} if crops is not None else {}),
    }


def defended_victim(plan: BackdoorPlan, spec, device: str = "cpu", bar=None,
                    progress: bool = True) -> tuple[IQAModel, Path, dict]:
    """The victim defended where a defender would defend it (cached under ``cache_dir("defended")``).

    A post-training defence (fine-tuning, pruning) gets the trained victim
    and the CLEAN dataset -- the defender's own benign data, of which it
    takes its benign fraction of the train split; keyed by the victim's
    weights digest, the data, the defence and the seed.  A training-time
    defence (NT) replaces the victim's training: a fresh model trained on
    the poisoned split with the defence's loss and its own recipe
    (``profile``/``epochs``), keyed by the victim's configuration plus the
    defence.  Returns the model, its weights path and the cell's
    ``"defense"`` entry.
    """
    from .defended import _recipe_of, build_defense, cached_defense, defended_artifact

    defense = build_defense(spec.defense, spec.defense_params)
    t0 = time.perf_counter()
    with paused(bar):
        if defense.kind == "training":
            def fresh() -> IQAModel:
                return build_model(spec.model, spec.model_params, "random", device, spec.seed)

            def start() -> IQAModel:  # only on a cache miss
                console.print(f"[dim]training victim {spec.model} under {spec.defense} on the poisoned split[/dim]")
                return fresh()

            config = {"victim": plan.victim_config(), "seed": spec.seed, "recipe": _recipe_of(fresh(), defense),
                      "defense": {"name": spec.defense, "params": defense.params}}
            model, path = cached_defense(defense, spec.model, spec.model_params, config, start, plan.poisoned,
                                         spec.seed, device, progress, info={"victim": config["victim"]},
                                         score_range=False)
        else:
            _, victim_path = plan.train_victim()
            model, path = defended_artifact(spec.model, spec.model_params, str(victim_path), plan.context.dataset,
                                            spec.defense, spec.defense_params, spec.seed, device, progress,
                                            score_range=False)
    plan.timings["defense_s"] = time.perf_counter() - t0
    model.requires_grad_(False)
    return model, path, {"name": spec.defense, "params": defense.params, "kind": defense.kind}


def _weights_id(path: Path) -> str:
    return f"{path.name} (sha256:{file_digest(path)})"


def _evaluate_and_store(runner, config, model, path, dataset, items, setup: BackdoorPlan | BackdoorSetup, spec,
                        run_id, manifest, bar, label) -> dict:
    store = runner.store
    key = config_key(config)
    manifest["cells"].append({"key": key, "config": config})
    if store.cell_status(key) == "done" and not runner.force:
        console.print(f"[dim]skip {label} (finished earlier, cell {key}; --force recomputes)[/dim]")
        return store.cells_by_key(key)["summary"]
    if runner.force:
        store.reset_cell(key)
    store.start_cell(key, "backdoor", config, run_id)
    t0 = time.perf_counter()
    crops = config.get("eval_crops")
    crops = EvalCrops(crops["n"], crops["size"], crops["hflip"], crops["seed"]) if crops else None
    result = evaluate_backdoor(model, dataset, items, setup.trigger, setup.delta_max, TEST_ALPHAS, runner.device,
                               spec.batch_size, bar, label, config["trigger_images"], crops, config["seed"])
    for b, rows in enumerate(image_rows(result)):
        store.add_batch(key, b, rows)
    m = result["metrics"]
    summary = {
        "kind": "backdoor", "victim": config["victim"], "attack": config["attack"]["name"],
        "label_mode": config["attack"].get("label_mode"), "trigger": config["trigger"]["name"],
        **{k: m["benign"][k] for k in ("plcc", "srocc", "rmse")},
        "mmae": m["mmae"], "mmra": m["mmra"], "psnr": m.get("psnr_alpha1"),
        "per_alpha": {f"{a:+.1f}": v for a, v in m["per_alpha"].items()},
        "delta_max": m["delta_max"], "n": m["n"], "n_triggered": m["n_triggered"], "artifact": str(path),
        "eval_crops": crops.describe() if crops is not None else dict(WHOLE_IMAGE),
        "trigger_identity": config["trigger"], "defense": config["defense"],
        "timings": {**setup.timings, "eval_s": time.perf_counter() - t0},
        "spec": asdict(spec),
    }
    store.finish_cell(key, summary)
    summary = store.cells_by_key(key)["summary"]
    from .plugins import notify_result

    notify_result({"key": key, "config": config, "summary": summary})
    return summary


def stored_shift_curve(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Mean achieved score shift per alpha from a cell's stored rows."""
    by_alpha: dict[float, list[float]] = {}
    for r in rows:
        if r["bound"] != 0:  # alpha 0: the benign rows
            by_alpha.setdefault(float(r["bound"]), []).append(r["attacked"] - r["clean"])
    alphas = np.array(sorted(by_alpha))
    return alphas, np.array([np.mean(by_alpha[a]) for a in alphas])
