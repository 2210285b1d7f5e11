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

#: public name -> (module, attribute); attribute None: the module itself
_LAZY = {
    "get_model": ("api", "get_model"),
    "get_dataset": ("api", "get_dataset"),
    "get_attack": ("api", "get_attack"),
    "get_trigger": ("api", "get_trigger"),
    "get_defense": ("api", "get_defense"),
    "scores": ("metrics.scores", None),
    "imagemetrics": ("metrics.images", None),
    "contracts": ("contracts", None),
}

__all__ = ["hookimpl", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'iqabench' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    loaded = import_module(f".{module}", __name__)
    return loaded if attribute is None else getattr(loaded, attribute)
