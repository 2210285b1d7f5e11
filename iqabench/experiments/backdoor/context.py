"""What a backdoor attack works with: the data, the model to copy, its recipe,
the poison subset, and the models the experiment trains for it (cached).

:class:`BackdoorContext` is handed to the attack's ``make_trigger`` and
``poison`` (:class:`iqabench.contracts.BackdoorAttack`).  It trains every model
with the model's own recipe named by the attack's ``profile``
(:func:`recipe_for`): the *surrogate* (the attacker's model, trained clean
on the poison subset), the *victim* (on the poisoned split, see
:mod:`.plan`) and the *clean* model (the ``w/o`` row), each cached under a
key of its whole configuration.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ...artifacts import building, cache_dir, config_key, save_state, write_json
from ...checkpoints import BatchCheckpoints
from ...contracts import IQADataset, IQAModel, Item, RunContext, TrainRecipe
from ...data.views import SubsetDataset
from ...errors import DatasetError, ModelError
from ...models.build import build_model, card_path, start_identity, training_start
from ...models.cards import backbone_record, train_and_save
from ...models.trained import trained_path
from ...models.training import train_model, training_steps
from ...progress import console, current_work_ahead, paused
from .poisoning import mos_scale, poison_indices

TRAIN_SPLIT = "train"
PROFILES = ("quick", "default", "paper")


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
    """Everything an attack may use: the data, the model to copy, caches.

    ``run`` supplies the seed, the device and the progress display
    (:attr:`seed`, :attr:`device`, :attr:`bar`)."""

    model_name: str
    model_params: dict[str, Any]
    dataset: IQADataset
    run: RunContext = field(default_factory=RunContext)
    profile: str = "default"
    ratio: float = 0.2
    split: str = TRAIN_SPLIT
    #: what the poisoning computes (attack, its victim-affecting parameters,
    #: trigger, subset): set by :func:`.plan.plan_backdoor` before it poisons,
    #: the key of its victim and of its :meth:`batch_checkpoints`
    poisoning: dict | None = field(default=None, init=False)
    _surrogate: IQAModel | None = field(default=None, init=False, repr=False)
    _checkpoints: list[BatchCheckpoints] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.split not in self.dataset.splits():
            raise DatasetError(f"dataset {self.dataset.name!r} has no {self.split!r} split to poison")
        probe = training_start(self.model_name, self.model_params, "cpu", self.seed)
        self.recipe_profile, self.recipe = recipe_for(probe, self.profile)
        self.resolved_params = getattr(probe, "params", self.model_params)
        self.start = start_identity(probe)  # the pretrained backbone every model here starts from
        self.backbone = backbone_record(probe)
        self.train_items = [it for it in self.dataset.items(self.split) if it.mos is not None]
        self.poison_items = [self.train_items[i] for i in poison_indices(len(self.train_items), self.ratio, self.seed)]
        self.delta_scale = mos_scale(self.dataset)
        # what this experiment may train, for the cost estimate: the surrogate
        # (if its trigger or poisoning asks for one), the victim, the clean model
        self.train_steps = {"surrogate": training_steps(self.recipe, len(self.poison_items)),
                            "victim": training_steps(self.recipe, len(self.train_items))}
        self.train_steps["clean"] = self.train_steps["victim"]
        current_work_ahead().expect(sum(self.train_steps.values()))

    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def device(self) -> str:
        return self.run.device

    @property
    def bar(self) -> Any:
        return self.run.bar

    # ------------------------------------------------------------- identity
    def identity(self) -> dict:
        """The configuration every artifact of this experiment depends on."""
        return {"model": self.model_name, "params": self.resolved_params, "dataset": self.dataset.fingerprint(),
                "recipe": asdict(self.recipe), "recipe_profile": self.recipe_profile, "seed": self.seed,
                **self.start}

    def poison_subset_identity(self) -> dict:
        return {"ratio": self.ratio, "items": config_key([it.name for it in self.poison_items])}

    def batch_checkpoints(self, config: dict) -> BatchCheckpoints | None:
        """Where a long poisoning keeps its finished batches (:mod:`iqabench.checkpoints`),
        keyed by :attr:`poisoning` (the plan's poison identity, so parameters that
        only change the evaluation do not orphan them) and ``config`` (how the
        attack batches its work); removed once a victim has been trained on the
        poison (not a surrogate: it is trained on clean images, possibly while a
        resumed poisoning reads them).  None when the poisoning runs outside a
        plan (no identity to resume by)."""
        if self.poisoning is None:
            return None
        checkpoints = BatchCheckpoints({**self.identity(), "device": str(self.device), "poisoning": self.poisoning,
                                        **config}, self.device)
        self._checkpoints.append(checkpoints)
        return checkpoints

    # ------------------------------------------------------------- training
    def fresh_model(self, device: str | None = None) -> IQAModel:
        """The model to copy as its recipe starts: randomly initialised with
        the experiment's seed, with its pretrained backbone if it has one."""
        return training_start(self.model_name, self.model_params, device or self.device, self.seed)

    def load_model(self, path: Path) -> IQAModel:
        """The model with the weights at ``path``, frozen (attacks need input gradients only)."""
        model = build_model(self.model_name, self.model_params, path, self.device, self.seed)
        model.requires_grad_(False)
        return model

    def train_cached(self, role: str, data: Callable[[], IQADataset], extra: dict) -> tuple[IQAModel, Path]:
        """Train a fresh model on ``data()`` with the recipe (once), cached
        under ``cache_dir(role + "s")``; ``data`` is only called on a miss."""
        cfg = {**self.identity(), "role": role, **extra}
        key = config_key(cfg)
        path = cache_dir(f"{role}s") / f"{self.model_name}-{key}.safetensors"
        with building(path, lambda: path.exists() and card_path(path).exists()) as missing:  # once among runs
            if not missing:
                current_work_ahead().withdraw(self.train_steps.get(role, 0))
            else:
                dataset = data()
                model = self.fresh_model()
                console.print(f"[dim]training {role} {self.model_name} ({self.recipe_profile} recipe) -> "
                              f"{path.name}[/dim]")
                with paused(self.bar):
                    summary = train_model(model, dataset, self.recipe, self.seed, self.device, self.run.progress)
                save_state(path, model.state_dict(), metadata={"role": role, "model": self.model_name, "key": key})
                write_json(card_path(path), {"role": role, "config": cfg, "train": summary,
                                             **backbone_record(model), "torch": torch.__version__})
                if "poison" in extra:  # a victim: it holds what the poisoning's batches were kept for
                    for checkpoints in self._checkpoints:
                        checkpoints.clear()
        return self.load_model(path), path

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
        path = self._shipped_clean()
        if path is None:
            path = trained_path(self.model_name, self.resolved_params, self.dataset, self.recipe, self.seed,
                                start=self.start)
        with building(path, lambda: path.exists() and card_path(path).exists()) as missing:  # once among runs
            if not missing:
                current_work_ahead().withdraw(self.train_steps["clean"])
            else:
                model = self.fresh_model()
                console.print(f"[dim]training clean {self.model_name} ({self.recipe_profile} recipe) -> "
                              f"{path.name}[/dim]")
                with paused(self.bar):
                    # no score range: the backdoor metrics never normalise, and scoring
                    # every image of every split would cost a large model minutes
                    train_and_save(model, self.dataset, self.recipe, path, self.run, params=self.resolved_params,
                                   score_range=False)
        return self.load_model(path), path

    def _shipped_clean(self) -> Path | None:
        path = build_model(self.model_name, self.model_params, "random", "cpu", self.seed).pretrained_weights()
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
