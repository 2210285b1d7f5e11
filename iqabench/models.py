"""Building registered models with their weights, card and clean range.

Weights come from (in this order of preference for ``weights="default"``)
the model's own local pretrained file, else random initialisation -- which
is recorded as ``"random-init"`` in every manifest and leaderboard row, so a
number from an untrained network is never mistaken for a real one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .artifacts import cache_dir, config_key, file_digest, load_state, write_json
from .contracts import IQADataset, IQAModel
from .errors import WeightsError
from .params import resolve_params
from .plugins import lookup
from .sampling import sampling_key, subset

RANDOM = ("random", "random-init")
#: how many images of a dataset measure a model's clean range when its card has none
RANGE_REFERENCE_IMAGES = 128
#: the seed of that reference subset: fixed, so every cell of a model shares one range
RANGE_REFERENCE_SEED = 0


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
    else:
        model.weights = f"random-init (seed {seed})"
    return model.to(device).eval()


def model_identity(model: IQAModel) -> dict[str, Any]:
    """What makes two models the same, for cell and artifact keys (with how
    its clean range was sampled, once :func:`ensure_score_range` measured it
    on a subset of a dataset)."""
    return {"name": model.name, "params": getattr(model, "params", {}), "weights": model.weights,
            **getattr(model, "range_sampling", {})}


def ensure_score_range(model: IQAModel, dataset: IQADataset, device: str, batch_size: int = 16) -> tuple[float, float]:
    """The model's FIXED clean score range.

    Taken from the model card when it has one; otherwise measured once on a
    fixed reference set -- at most ``RANGE_REFERENCE_IMAGES`` images of
    every split of ``dataset``, stratified by content and distortion with
    the fixed ``RANGE_REFERENCE_SEED`` (:func:`iqabench.sampling.subset`) --
    and cached, so that every attack and every subset is normalised with
    the same bounds.
    """
    if model.score_range is not None:
        return model.score_range
    seen: dict[str, object] = {}
    for split in dataset.splits():
        for item in dataset.items(split):
            seen.setdefault(item.name, item)  # a split such as "all" may repeat items
    sampled = sampling_key(RANGE_REFERENCE_IMAGES, len(seen))
    key = config_key({"model": model_identity(model), "dataset": dataset.fingerprint(),
                      "reference_images": RANGE_REFERENCE_IMAGES, **sampled})
    path = cache_dir("ranges") / f"{model.name}-{key}.json"
    if path.exists():
        low, high = json.loads(path.read_text())["score_range"]
    else:
        from .training import predict

        if not seen:
            raise WeightsError(f"dataset {dataset.name!r} has no images to measure model {model.name!r}'s clean range on")
        reference = subset(list(seen.values()), RANGE_REFERENCE_IMAGES, RANGE_REFERENCE_SEED)
        allp = torch.as_tensor(predict(model, dataset, reference, device, batch_size))
        low, high = float(allp.min()), float(allp.max())
        if not high > low:
            raise WeightsError(
                f"model {model.name!r} ({model.weights}) gives a constant score {low:.4g} on "
                f"dataset {dataset.name!r}: no clean range to normalise with"
            )
        write_json(path, {"score_range": [low, high], "model": model_identity(model), "dataset": dataset.fingerprint()})
    model.score_range = (low, high)
    model.range_sampling = {f"range_{k}": v for k, v in sampled.items()}
    return model.score_range
