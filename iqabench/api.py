"""The Python API: the same components the CLI uses, by name.

>>> import iqabench
>>> model = iqabench.get_model("cnniqa")
>>> attack = iqabench.get_attack("ifgsm", eps=8/255)
>>> x_adv = attack(model, x)
"""
from __future__ import annotations

from typing import Any

from .registry import build


def get_model(name: str, weights: str | None = "default", device: str = "cpu", seed: int = 0, **params: Any):
    """A registered model in eval mode (see :func:`iqabench.models.build.build_model`)."""
    from .models.build import build_model

    return build_model(name, params, weights=weights, device=device, seed=seed)


def get_dataset(name: str, **params: Any):
    return build("dataset", name, params)


def get_attack(name: str, **params: Any):
    return build("attack", name, params)


def get_trigger(name: str, **params: Any):
    return build("trigger", name, params)


def get_defense(name: str, **params: Any):
    return build("defense", name, params)
