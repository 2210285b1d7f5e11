"""How the board names a row's settings: parameters that differ from a
component's defaults, a defence and its like-for-like baseline.

Plugins that are no longer installed are shown as recorded (every
parameter), never as an error: the board is a pure function of the store.
"""
from __future__ import annotations

from ..params import param_specs
from ..registry import NO_DEFENSE, baseline_of, lookup


def non_default(kind: str, name: str, params: dict) -> str:
    """Parameters that differ from the component's defaults, compactly.

    A parameter whose default is None and which the component fills in from
    the others (MADC's step size by its mode) is shown only if it differs from
    the value the component would fill in.
    """
    try:
        cls = lookup(kind, name).obj
        specs = param_specs(cls)
        shown = {k: v for k, v in params.items() if k in specs and specs[k].default != v}
        filled = [k for k in shown if specs[k].default is None]
        if filled:
            derived = cls(**{k: v for k, v in shown.items() if k not in filled})
            shown = {k: v for k, v in shown.items() if k not in filled or getattr(derived, k, None) != v}
    except Exception:  # a plugin no longer installed: show everything
        shown = params
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(shown.items()))


def defense_label(defense: dict | None) -> str:
    """``none``, or the defence's name with its non-default parameters."""
    if not defense:
        return NO_DEFENSE
    extra = non_default("defense", defense["name"], defense.get("params") or {})
    return defense["name"] + (f" {extra}" if extra else "")


def baseline_label(defense: dict | None) -> str:
    """The label of a defended cell's like-for-like baseline row: ``""`` for an undefended
    cell and for a cell that is its own baseline (NT at ``lam = 0``), ``"?"`` when the
    defence's plugin is no longer installed."""
    if not defense:
        return ""
    try:
        base = baseline_of(defense["name"], defense.get("params") or {})
    except Exception:
        return "?"
    label = defense_label(base if base["name"] != NO_DEFENSE else None)
    return "" if label == defense_label(defense) else label


#: what a row's model is marked with when its training started from a random
#: backbone although the model has a pretrained one (the summary's ``backbone``)
RANDOM_BACKBONE_MARK = " [random backbone]"


def backbone_mark(summary: dict) -> str:
    """:data:`RANDOM_BACKBONE_MARK` for a cell whose model trained from a random
    backbone (the paper's start is ImageNet: its numbers are not the paper's
    setting), else nothing."""
    return RANDOM_BACKBONE_MARK if summary.get("backbone") == "random" else ""


def model_name(model: dict) -> str:
    """A model's name with its non-default parameters (``cnniqa filters=16 hidden=200``):
    two architectures of one plugin are two models on the board."""
    extra = non_default("model", model["name"], model.get("params") or {})
    return model["name"] + (f" {extra}" if extra else "")


def weights_label(weights, summary: dict | None = None) -> str:
    """A weights record as the board shows it: ``random-init`` for any untrained
    network, else the recorded file and digest, after the ``trained:`` form that made
    it (:func:`requested_weights`); marked when trained from a random backbone."""
    text = "random-init" if str(weights).startswith("random-init") else str(weights)
    made = requested_weights(summary)
    return (f"{made}: " if made else "") + text + backbone_mark(summary or {})


def requested_weights(summary: dict | None, transfer_source: bool = False) -> str:
    """The ``trained:seed=N[,profile=P]`` form a cell's model (or its transfer source)
    was asked for, as its spec records it -- how the weights file was made -- else ""."""
    spec = (summary or {}).get("spec") or {}
    value = (spec.get("transfer_from") or {}).get("weights") if transfer_source else spec.get("weights")
    return value if isinstance(value, str) and value.startswith("trained:") else ""


#: the origin of a training-time defence's rows: each seed trains its own model from scratch
TRAINED_PER_SEED = "trained per seed"


def origin_label(cfg: dict, summary: dict | None = None) -> str:
    """The weights a cell's row starts from, so that a defended row and its baseline share it:
    an undefended model's own weights, a post-training defence's start model (the model it
    was normalised by), :data:`TRAINED_PER_SEED` for a training-time defence."""
    defense = cfg.get("defense") or {}
    if not defense:
        return weights_label(cfg["model"]["weights"], summary)
    if defense.get("kind") == "training":
        return TRAINED_PER_SEED
    start = (defense.get("normalised_by") or {}).get("weights", cfg["model"]["weights"])
    return weights_label(start, summary)


def images_label(dataset: dict) -> str:
    """Which images of the split a cell measured: ``all``, or the size and scheme of its
    subset (``48 stratified-v1``).  Rows of different subsets are different rows."""
    limit, sampling = dataset.get("limit"), dataset.get("sampling")
    return f"{limit} {sampling}" if limit and sampling else "all"


def model_label(model: dict, requested: str = "") -> str:
    """A model's name, non-default parameters and weights file, short (after the
    ``trained:`` form that made the file, when ``requested`` names one)."""
    weights = str(model.get("weights", "")).split(" (")[0]
    weights = f"{requested}: {weights}" if requested and weights else weights
    return model_name(model) + (f" [{weights}]" if weights else "")


def cell_model_label(cfg: dict, summary: dict | None) -> str:
    """:func:`model_label` of a cell's own model, named by the ``trained:`` form its spec asked for."""
    return model_label(cfg["model"], requested_weights(summary))


def variant_label(cfg: dict, summary: dict | None = None) -> str:
    """How an evasion cell differs from the plain white-box one: crafted on
    another model, scored after JPEG or as a saved 8-bit file ("" if neither)."""
    out = ""
    if cfg.get("transfer_from"):
        out += f" [from {model_label(cfg['transfer_from'], requested_weights(summary, transfer_source=True))}]"
    delivery = cfg.get("delivery") or {}
    if delivery.get("format") == "jpeg":
        out += f" [JPEG q{delivery['quality']}]"
    elif delivery:
        out += " [8-bit]"
    return out
