"""A model's FIXED clean score range, by which every robustness score is normalised.

From the model card when it has one; otherwise measured once on a fixed
reference subset of the dataset and cached as an artifact, so that every
attack, subset and seed of a model is normalised with the same bounds.
"""
from __future__ import annotations

import json

import torch

from ..artifacts import cache_dir, config_key, write_json
from ..contracts import IQADataset, IQAModel
from ..data.sampling import sampling_key, subset
from ..errors import WeightsError
from .build import model_identity
from .evaluation import predict

#: how many images of a dataset measure a model's clean range when its card has none
RANGE_REFERENCE_IMAGES = 128
#: the seed of that reference subset: fixed, so every cell of a model shares one range
RANGE_REFERENCE_SEED = 0


def ensure_score_range(model: IQAModel, dataset: IQADataset, device: str, batch_size: int = 16) -> tuple[float, float]:
    """The model's FIXED clean score range.

    Taken from the model card when it has one; otherwise measured once on a
    fixed reference set -- at most ``RANGE_REFERENCE_IMAGES`` images of
    every split of ``dataset``, stratified by content and distortion with
    the fixed ``RANGE_REFERENCE_SEED`` (:func:`iqabench.data.sampling.subset`) --
    and cached, so that every attack and every subset is normalised with
    the same bounds.  A range measured on one dataset is not another's: a model
    object a run (or a Ray worker) reuses across datasets measures each, so a
    cell's range and key never depend on which cells ran before it.
    """
    fingerprint = dataset.fingerprint()
    if model.score_range is not None and getattr(model, "range_dataset", fingerprint) == fingerprint:
        return model.score_range  # its card's (or its baseline's), or measured on this dataset before
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
    model.range_dataset = fingerprint  # a model reused on another dataset measures that one's
    model.range_sampling = {f"range_{k}": v for k, v in sampled.items()}
    return model.score_range
