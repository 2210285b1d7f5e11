"""Building pyiqa architectures without the network, and finding local weights.

pyiqa's architecture constructors fetch weights as they build: the metric's
own checkpoint (``load_pretrained_network(url)``), ImageNet backbones
(``timm.create_model(..., pretrained=True)``, ``torchvision.models.vgg16(
weights="IMAGENET1K_V1")``) and auxiliary networks (DBCNN's SCNN branch).
Each of those would try a connection of its own (no timeout, no hash
check, and it may hang on a slow resolver).  :func:`offline_construction`
builds an architecture with every such fetch replaced by "leave the random
initialisation as it is", and records what was skipped.  Weights -- the
checkpoint, and the ImageNet backbones a training run starts from -- are
then fetched by iqabench (:mod:`.weights`, :mod:`iqabench.downloads`) and
loaded by iqabench itself, safely
(:func:`iqabench.artifacts.load_state`: safetensors, or ``torch.load`` with
``weights_only=True`` -- pyiqa loads its checkpoints with
``weights_only=False``, which executes arbitrary pickles).

Where pyiqa keeps its checkpoints: ``load_file_from_url`` saves
``<torch hub dir>/pyiqa/<file name of the URL>``, with the hub dir
``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``).  :func:`pyiqa_cache_file`
looks there (and in ``$IQABENCH_PYIQA_CACHE`` first) without importing pyiqa;
:mod:`.weights` downloads there.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

#: never let huggingface_hub / transformers try the network
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

#: torchvision builders pyiqa's archs call with ImageNet weights
_TORCHVISION_BUILDERS = ("vgg16", "resnet18", "resnet34", "resnet50", "resnet101")


@contextlib.contextmanager
def hf_offline() -> Iterator[None]:
    """Hugging Face's offline switches on while pyiqa's modules are imported
    and its networks built (huggingface_hub reads them at import), restored
    afterwards: set for good, they would also switch off iqabench's own
    downloads (:func:`iqabench.downloads.offline` honours them)."""
    saved = {key: os.environ.get(key) for key in OFFLINE_ENV}
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` (honours ``$TORCH_HOME``)."""
    import torch

    return Path(torch.hub.get_dir())


def pyiqa_cache_dirs() -> list[Path]:
    """Where pyiqa's downloaded files may be, most specific first."""
    dirs = []
    if os.environ.get("IQABENCH_PYIQA_CACHE"):
        dirs.append(Path(os.environ["IQABENCH_PYIQA_CACHE"]).expanduser())
    dirs.append(torch_hub_dir() / "pyiqa")
    default = Path.home() / ".cache" / "torch" / "hub" / "pyiqa"
    if default not in dirs:
        dirs.append(default)
    return dirs


def pyiqa_cache_file(filename: str) -> Path | None:
    """The local copy of one pyiqa download, or None (never downloads)."""
    for d in pyiqa_cache_dirs():
        path = d / filename
        if path.is_file():
            return path
    return None


def import_pyiqa_module(name: str) -> Any:
    """Import a pyiqa submodule (about 7 s the first time) with the network
    switched off for huggingface_hub."""
    import importlib

    try:
        with hf_offline():
            return importlib.import_module(name)
    except ImportError as exc:
        from iqabench.errors import ModelError

        raise ModelError(f"cannot import {name} (pyiqa is needed for the zoo models): {exc}") from None


class Skipped(list):
    """What offline construction left at random initialisation."""


@contextlib.contextmanager
def offline_construction(*modules: str) -> Iterator[Skipped]:
    """Build pyiqa architectures with every weight fetch disabled.

    ``modules``: the pyiqa arch modules (e.g. ``"pyiqa.archs.dbcnn_arch"``)
    whose module-level loaders are neutralised.

    * ``timm.create_model(..., pretrained=True)`` -> ``pretrained=False``;
    * torchvision's ImageNet builders -> ``weights=None``;
    * pyiqa's ``load_pretrained_network`` / ``load_file_from_url`` in the arch
      modules -> no-op (the request is recorded in the yielded list).

    The patches are undone on exit.  Nothing here touches the network; a
    request that slips through still fails fast (``HF_HUB_OFFLINE``).
    """
    import timm
    import torchvision

    skipped = Skipped()
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, attr: str, value: Any) -> None:
        saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)

    orig_create = timm.create_model

    def create_model(name: str, *args: Any, **kwargs: Any):
        if kwargs.get("pretrained"):
            skipped.append(f"timm:{name}")
        kwargs["pretrained"] = False
        return orig_create(name, *args, **kwargs)

    patch(timm, "create_model", create_model)

    def no_weights(builder: Callable) -> Callable:
        def build(*args: Any, **kwargs: Any):
            if kwargs.get("weights") is not None or kwargs.get("pretrained"):
                skipped.append(f"torchvision:{builder.__name__}")
            kwargs.pop("pretrained", None)
            kwargs["weights"] = None
            return builder(*args, **kwargs)

        build.__name__ = builder.__name__
        return build

    for name in _TORCHVISION_BUILDERS:
        if hasattr(torchvision.models, name):
            patch(torchvision.models, name, no_weights(getattr(torchvision.models, name)))

    def skip_network(*args: Any, **kwargs: Any) -> None:
        what = next((a for a in args if isinstance(a, str)), kwargs.get("model_path", "?"))
        skipped.append(f"pyiqa:{os.path.basename(str(what))}")

    for mod_name in modules:
        mod = import_pyiqa_module(mod_name)
        for attr in ("load_pretrained_network", "load_file_from_url"):
            if hasattr(mod, attr):
                patch(mod, attr, skip_network)
    try:
        with hf_offline():
            yield skipped
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)
