"""iqabench: a plugin-based benchmark harness for the security of
image-quality-assessment models.

Importing the package is cheap (no torch); the API functions import what
they need on first use.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from .hookspecs import hookimpl

__version__ = "0.1.0"

_LAZY = {
    "get_model": "api",
    "get_dataset": "api",
    "get_attack": "api",
    "get_trigger": "api",
    "get_defense": "api",
    "scores": None,
    "imagemetrics": None,
    "contracts": None,
}

__all__ = ["hookimpl", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'iqabench' has no attribute {name!r}")
    module = _LAZY[name]
    if module is None:
        return import_module(f".{name}", __name__)
    return getattr(import_module(f".{module}", __name__), name)
