"""Trained models as cached artifacts.

A model trained with a given recipe on a given dataset and seed is stored
once under a key of that configuration and reused by every later run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .artifacts import cache_dir, config_key
from .models import build_model, card_path
from .params import resolve_params
from .plugins import lookup


def train_cached(model_name: str, dataset_name: str, model_params: dict[str, Any], dataset_params: dict[str, Any],
                 profile: str = "default", seed: int = 0, device: str = "cpu", output: str | None = None,
                 force: bool = False, progress: bool = True) -> dict:
    """Train (or reuse) ``model_name`` on ``dataset_name``; returns path and card."""
    from dataclasses import asdict

    from .training import train_and_save

    entry = lookup("dataset", dataset_name)
    dataset = entry.obj(**resolve_params(entry.obj, dataset_params, f"dataset {dataset_name!r}"))
    model = build_model(model_name, model_params, weights="random", device=device, seed=seed)
    recipe = model.recipe(profile)
    key = config_key({"model": model_name, "params": model.params, "dataset": dataset.fingerprint(),
                      "recipe": asdict(recipe), "seed": seed})
    path = Path(output) if output else cache_dir("models") / f"{model_name}-{dataset_name}-{key}.safetensors"
    if path.exists() and card_path(path).exists() and not force:
        return {"path": path, "card": json.loads(card_path(path).read_text()), "cached": True}
    card = train_and_save(model, dataset, recipe, seed=seed, device=device, path=path, progress=progress)
    return {"path": path, "card": card, "cached": False}
