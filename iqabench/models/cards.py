"""Model cards: the weights of a trained or defended model saved with what made them.

A card (``<stem>.card.json`` beside the weights, :func:`iqabench.models.build.card_path`)
records the recipe, seed, parameters and data, the test split's
PLCC/SROCC/RMSE and -- unless left out -- the model's FIXED clean
``score_range`` over every image of every split, which then normalises
every robustness score computed for the model (REFERENCES.md section 1).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts import save_state, write_json
from ..contracts import IQADataset, IQAModel, Regulariser, RunContext, TrainRecipe
from ..metrics.scores import correlations
from ..params import param_specs
from .build import card_path
from .evaluation import TEST_SPLIT, evaluate, predict
from .training import train_model


def model_params(model: IQAModel) -> dict[str, Any]:
    """The constructor parameters a model kept as attributes of the same name."""
    return {name: getattr(model, name) for name in param_specs(type(model)) if hasattr(model, name)}


def train_and_save(model: IQAModel, dataset: IQADataset, recipe: TrainRecipe, path: Path, ctx: RunContext, *,
                   params: dict[str, Any] | None = None, regulariser: Regulariser | None = None,
                   score_range: bool = True) -> dict[str, Any]:
    """Train with ``ctx``'s seed and device, evaluate on the test split, save
    weights and the model card.

    The card's ``score_range`` is the [min, max] of the model's clean scores
    over every image of every split: a fixed range, so robustness scores of
    different attacks stay comparable (REFERENCES.md section 1).
    ``score_range=False``: see :func:`save_with_card`.
    """
    path = Path(path)
    summary = train_model(model, dataset, recipe, ctx.seed, ctx.device, ctx.progress, regulariser=regulariser)
    return save_with_card(model, dataset, path, ctx.device, {
        "recipe": asdict(recipe), "seed": ctx.seed,
        "params": params if params is not None else getattr(model, "params", None) or model_params(model),
        "train_seconds": round(summary["train_time_s"], 1), "final_train_loss": summary["loss_history"][-1],
        **backbone_record(model),
    }, score_range=score_range)


def backbone_record(model: IQAModel) -> dict[str, Any]:
    """The card's ``backbone`` entry: ``imagenet (<file>, sha256:...)`` or
    ``random`` for a model with a pretrained backbone
    (:func:`iqabench.models.build.training_start`); nothing for one without."""
    backbone = getattr(model, "backbone", None)
    return {"backbone": backbone} if backbone else {}


def save_with_card(model: IQAModel, dataset: IQADataset, path: Path, device: str = "cpu",
                   info: dict[str, Any] | None = None, score_range: bool = True) -> dict[str, Any]:
    """Score the test split, save the weights and a model card (``info`` merged in).

    ``score_range=False`` leaves the fixed clean range out of the card: it
    costs a prediction of every image of every split, which models that
    only the backdoor metrics use (no normalisation) do not need, and
    :func:`iqabench.models.score_range.ensure_score_range` still derives it on demand.
    """
    path = Path(path)
    splits = dataset.splits()
    test = TEST_SPLIT if TEST_SPLIT in splits else splits[-1]
    pred, mos, _ = evaluate(model, dataset, test, device)
    metrics = correlations(pred, mos)
    ranged = {}
    if score_range:
        others = [it for s in splits for it in dataset.items(s) if s != test or it.mos is None]
        everything = np.concatenate([np.asarray(pred, dtype=float), predict(model, dataset, others, device)])
        ranged = {"score_range": [float(everything.min()), float(everything.max())]}
    card = {
        "model": model.name,
        "params": getattr(model, "params", None) or model_params(model),
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint(),
        "device": device,
        **(info or {}),
        "test": {"split": test, "n": len(mos), **metrics},
        **ranged,
        "torch": torch.__version__,
    }
    save_state(path, model.state_dict(), metadata={"model": model.name, "dataset": dataset.fingerprint()})
    write_json(card_path(path), card)
    return card
