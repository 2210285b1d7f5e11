"""Trained models as cached artifacts.

A model trained with a given recipe on a given dataset and seed is stored
once under a key of that configuration and reused by every later run
(``iqabench train``, a backdoor experiment's clean model, and a cell whose
weights are the form ``trained:seed=N[,profile=P]``: :func:`resolve_weights`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..artifacts import building, cache_dir, config_key
from ..contracts import IQADataset, RunContext, TrainRecipe
from ..registry import build
from .build import card_path, parse_trained, start_identity, training_start
from .cards import train_and_save


def trained_path(model_name: str, params: dict[str, Any], dataset: IQADataset, recipe: TrainRecipe, seed: int,
                 file_label: str | None = None, start: dict[str, Any] | None = None) -> Path:
    """Where the model trained clean on ``dataset`` with ``recipe`` and ``seed`` is
    cached: the key of that configuration (and of the starting point,
    ``start``: :func:`.build.start_identity`), in a file named after the model
    and ``file_label`` (default: the dataset's name)."""
    key = config_key({"model": model_name, "params": params, "dataset": dataset.fingerprint(),
                      "recipe": asdict(recipe), "seed": seed, **(start or {})})
    return cache_dir("models") / f"{model_name}-{file_label or dataset.name}-{key}.safetensors"


def train_cached(model: tuple[str, dict[str, Any]], dataset: tuple[str, dict[str, Any]], ctx: RunContext,
                 profile: str = "default", output: str | None = None, force: bool = False,
                 data: IQADataset | None = None) -> dict:
    """Train (or reuse) the model ``(name, params)`` on the dataset ``(name, params)``
    with the recipe ``profile`` and ``ctx``'s seed; returns path and card.
    ``data``: that dataset already built (a cell's), else it is built here."""
    (model_name, model_params), (dataset_name, dataset_params) = model, dataset
    data = data if data is not None else build("dataset", dataset_name, dataset_params)
    net = training_start(model_name, model_params, device=ctx.device, seed=ctx.seed)
    recipe = net.recipe(profile)
    path = Path(output) if output else trained_path(model_name, net.params, data, recipe, ctx.seed, dataset_name,
                                                    start_identity(net))
    if force:
        return {"path": path, "card": train_and_save(net, data, recipe, path, ctx), "cached": False}
    with building(path, lambda: path.exists() and card_path(path).exists()) as missing:  # once among runs
        if missing:
            return {"path": path, "card": train_and_save(net, data, recipe, path, ctx), "cached": False}
    return {"path": path, "card": json.loads(card_path(path).read_text()), "cached": True}


def resolve_weights(model: tuple[str, dict[str, Any]], weights: str, dataset: tuple[str, dict[str, Any]],
                    ctx: RunContext, data: IQADataset | None = None) -> str:
    """``weights`` as :func:`.build.build_model` takes them: the form
    ``trained:seed=N[,profile=P]`` becomes the file of the model ``(name,
    params)`` trained on ``dataset`` (``(name, params)``; ``data``: it built)
    with its recipe ``P`` and seed ``N`` -- :func:`train_cached`, so trained
    once, then loaded like any weights file (its name and sha256 in the
    cell's key, its card with the test SROCC/PLCC); any other weights are
    returned as they are.

    It is resolved here, where the dataset is known (a cell's model, a
    transfer source, the start of a post-training defence), and not in
    ``build_model``, which builds a model from its name, parameters and
    weights alone and knows no dataset."""
    form = parse_trained(weights)
    if form is None:
        return weights
    return str(train_cached(model, dataset, replace(ctx, seed=form.seed), form.profile, data=data)["path"])
