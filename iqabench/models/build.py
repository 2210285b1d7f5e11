"""Building registered models with their weights and model card.

Weights come from (in this order of preference for ``weights="default"``)
the model's own local pretrained file, else random initialisation -- which
is recorded as ``"random-init"`` in every manifest and leaderboard row, so a
number from an untrained network is never mistaken for a real one (an
analytic model without weights declares its ``provenance`` instead).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..artifacts import file_digest, load_state
from ..contracts import IQAModel
from ..errors import WeightsError
from ..params import resolve_params
from ..registry import lookup

RANDOM = ("random", "random-init")


def card_path(weights: str | Path) -> Path:
    """The model card that travels with a weights file: ``<stem>.card.json``."""
    return Path(weights).with_suffix(".card.json")


def build_model(
    name: str,
    params: dict[str, Any] | None = None,
    weights: str | Path | None = "default",
    device: str = "cpu",
    seed: int = 0,
) -> IQAModel:
    """Instantiate model ``name`` in eval mode on ``device``.

    ``weights``: ``"default"`` (the model's local pretrained file if it has
    one, else random init), ``"random"``, or a path to a safetensors / torch
    weights file (loaded with ``weights_only=True``; a missing path is an
    error naming it).
    """
    entry = lookup("model", name)
    resolved = resolve_params(entry.obj, params or {}, f"model {name!r}")
    torch.manual_seed(seed)  # random init is reproducible too
    model: IQAModel = entry.obj(**resolved)
    path: Path | None
    if weights in (None, "default"):
        path = model.pretrained_weights()
    elif str(weights) in RANDOM:
        path = None
    else:
        path = Path(weights).expanduser()
        if not path.exists():
            raise WeightsError(f"--weights {path}: file not found")
    model.params = resolved
    model.card = {}
    if path is not None:
        model.load_weights(load_state(path))
        model.weights = f"{path.name} (sha256:{file_digest(path)})"
        card = card_path(path)
        if card.exists():
            model.card = json.loads(card.read_text())
            if model.card.get("score_range"):
                model.score_range = tuple(float(v) for v in model.card["score_range"])
    else:  # an analytic model says what it is; anything else is an untrained network
        model.weights = model.provenance or f"random-init (seed {seed})"
    return model.to(device).eval()


def model_identity(model: IQAModel) -> dict[str, Any]:
    """What makes two models the same, for cell and artifact keys (with how
    its clean range was sampled, once :func:`iqabench.models.score_range.ensure_score_range` measured it
    on a subset of a dataset)."""
    return {"name": model.name, "params": getattr(model, "params", {}), "weights": model.weights,
            **getattr(model, "range_sampling", {})}

