"""Run manifests: everything needed to know how a result was produced."""
from __future__ import annotations

import importlib.metadata as md
import platform
import sys
import time
import uuid
from typing import Any

from ..downloads import used_files
from ..registry import plugin_infos

PACKAGES = ("iqabench", "torch", "torchvision", "numpy", "scipy", "pillow", "scikit-image", "pyiqa", "pluggy")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def build_manifest(run_id: str, device: str, seeds: list[int], extra: dict[str, Any] | None = None) -> dict:
    import torch

    return {
        "run_id": run_id,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "plugins": {n: {"distribution": i.distribution, "version": i.version, "builtin": i.builtin}
                    for n, i in plugin_infos().items()},
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "seeds": seeds,
        "cells": [],
        # every weights file loaded so far (path -> full sha256); the runner
        # updates it when the run ends (trained models, backbones, checkpoints)
        "weights_files": used_files(),
        **(extra or {}),
    }
