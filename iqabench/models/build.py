"""Building registered models with their weights and model card.

Weights come from (in this order of preference for ``weights="default"``)
the model's own local pretrained file, else random initialisation -- which
is recorded as ``"random-init"`` in every manifest and leaderboard row, so a
number from an untrained network is never mistaken for a real one (an
analytic model without weights declares its ``provenance`` instead).
Training starts from :func:`training_start`: random initialisation with the
model's pretrained backbone (ImageNet) when it has one.  The weights form
``trained:seed=N[,profile=P]`` (:func:`parse_trained`) names the model
iqabench trains on a cell's dataset; the cell resolves it to a weights file
(:func:`iqabench.models.trained.resolve_weights`) before it calls
:func:`build_model`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..artifacts import file_digest, load_state
from ..contracts import IQAModel
from ..downloads import ensure, record_use
from ..errors import WeightsError, WeightsUnavailable
from ..progress import console
from ..params import resolve_params
from ..registry import lookup

RANDOM = ("random", "random-init")
#: the weights form naming a model iqabench trains: ``trained:seed=N[,profile=P]``
TRAINED = "trained:"
TRAINED_FORM = "trained:seed=N[,profile=P]"


@dataclass(frozen=True)
class TrainedWeights:
    """A parsed ``trained:`` weights form: the training seed and recipe profile."""

    seed: int
    profile: str = "default"


def parse_trained(weights: str | Path | None, label: str | None = None) -> TrainedWeights | None:
    """``weights`` as a :class:`TrainedWeights` when it is the form
    ``trained:seed=N[,profile=P]``, None for any other weights (``default``,
    ``random``, a file).  A malformed form is a :class:`WeightsError` of one line
    naming it (``label``, default ``--weights <weights>``) and what is wrong."""
    text = str(weights) if weights is not None else ""
    if not text.startswith(TRAINED):
        return None
    where = label or f"--weights {text}"
    fields: dict[str, str] = {}
    for part in text[len(TRAINED):].split(","):
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not key or not value:
            raise WeightsError(f"{where}: expected {TRAINED_FORM}, got {part.strip()!r}")
        if key not in ("seed", "profile"):
            raise WeightsError(f"{where}: unknown key {key!r} (keys: seed, profile; {TRAINED_FORM})")
        if key in fields:
            raise WeightsError(f"{where}: {key} is given twice")
        fields[key] = value
    if "seed" not in fields:
        raise WeightsError(f"{where}: seed is missing ({TRAINED_FORM})")
    try:
        seed = int(fields["seed"])
    except ValueError:
        raise WeightsError(f"{where}: seed must be an integer") from None
    if seed < 0:
        raise WeightsError(f"{where}: seed must be >= 0")
    return TrainedWeights(seed, fields.get("profile", "default"))


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

    ``weights``: ``"default"`` (the model's pretrained file if it has one --
    its published files fetched first, :func:`fetch_published` -- else
    random init), ``"random"``, or a path to a safetensors / torch weights
    file (loaded with ``weights_only=True``; a missing path is an error
    naming it).  A ``trained:`` form is resolved to its file by the caller
    that knows the dataset (:func:`iqabench.models.trained.resolve_weights`).
    """
    if parse_trained(weights) is not None:
        raise WeightsError(f"--weights {weights}: a trained model needs the dataset it is trained on; resolve it "
                           f"with iqabench.models.trained.resolve_weights (a run's cells do)")
    entry = lookup("model", name)
    resolved = resolve_params(entry.obj, params or {}, f"model {name!r}")
    torch.manual_seed(seed)  # random init is reproducible too
    model: IQAModel = entry.obj(**resolved)
    path: Path | None
    if weights in (None, "default"):
        fetch_published(model, name, resolved)
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
        digest = file_digest(path, 64)
        record_use(path, digest)
        model.weights = f"{path.name} (sha256:{digest[:16]})"
        card = card_path(path)
        if card.exists():
            model.card = json.loads(card.read_text())
            if model.card.get("score_range"):
                model.score_range = tuple(float(v) for v in model.card["score_range"])
    else:  # an analytic model says what it is; anything else is an untrained network
        model.weights = model.provenance or f"random-init (seed {seed})"
    return model.to(device).eval()


#: ``model.backbone`` of a model whose pretrained backbone could not be had
RANDOM_BACKBONE = "random"


def training_start(name: str, params: dict[str, Any] | None = None, device: str = "cpu",
                   seed: int = 0) -> IQAModel:
    """Model ``name`` as its training recipes start: random initialisation
    (seeded) with its pretrained backbone loaded when it has one
    (:meth:`IQAModel.load_backbone`; fetched on first use unless offline).

    ``model.backbone``: ``"imagenet (<file>, sha256:<digest>)"``, or
    :data:`RANDOM_BACKBONE` with a warning naming what is missing when it
    cannot be had offline, or None for a model without a pretrained
    backbone.  A backbone file that changed since it was fetched, or a
    failed download, is an error, never a silent random start.  It is part of
    :func:`start_identity` (artifact keys) and of the model card.
    """
    model = build_model(name, params, "random", "cpu", seed)
    try:
        model.backbone = model.load_backbone()
    except WeightsUnavailable as exc:  # offline, not cached (a changed or broken file stays an error)
        console.print(f"warning: training from a RANDOM backbone: {exc}", style="yellow", markup=False,
                      soft_wrap=True)
        model.backbone = RANDOM_BACKBONE
    return model.to(device).train(False)


def start_identity(model: IQAModel) -> dict[str, Any]:
    """What a training run's starting point adds to an artifact key: its
    pretrained backbone, when one was loaded.  A random start adds nothing,
    so artifacts trained from random initialisation keep their keys."""
    backbone = getattr(model, "backbone", None)
    return {"backbone": backbone} if backbone not in (None, RANDOM_BACKBONE) else {}


def fetch_published(model: IQAModel, name: str, params: dict[str, Any]) -> None:
    """Make the model's published weights files (:meth:`IQAModel.remote_files`,
    role ``"weights"``) local and verified before it looks for them: fetched
    on first use, a one-line error when missing offline."""
    for file in type(model).remote_files(params):
        if file.role == "weights":
            ensure(file, f"model {name!r}", f"iqabench fetch {name}")


def model_identity(model: IQAModel) -> dict[str, Any]:
    """What makes two models the same, for cell and artifact keys (with how
    its clean range was sampled, once :func:`iqabench.models.score_range.ensure_score_range` measured it
    on a subset of a dataset, and the backbone a training start was given)."""
    return {"name": model.name, "params": getattr(model, "params", {}), "weights": model.weights,
            **start_identity(model), **getattr(model, "range_sampling", {})}

