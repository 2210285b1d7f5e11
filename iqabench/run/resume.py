"""Resuming a run by its cell specs (``iqabench run --trust-store``), without
planning what is finished.

A store cell's key is the hash of its *planned* configuration, and planning
builds the cell's artifacts (a backdoor cell's key holds its trained
victim's sha256, an NT-defended cell's its trained model's).  So learning
that a cell is finished normally means planning it -- training its models
again when the artifact cache is gone (another machine, a cluster node, a
store imported from open data).  Each time a spec is planned the process
that owns the store records, in its ``plans`` table, the keys of the store
cells it yielded under the spec's identity (:func:`spec_key`); a run with
``--trust-store`` skips a spec whose recorded cells are all finished without
planning it.

The identity is the hash of the spec with every component's parameters
resolved to their full typed values, defaults included (model, dataset,
attack -- as the built attack records them --, defence, transfer source,
the attack's named trigger), and the versions of iqabench and of the plugins
that registered those components and the experiment kind: a changed default
or a new plugin release is another spec.  It trusts everything else: the code
at an unchanged version, the default weights files, a dataset's files.
Resolving is cheap: components are built without weights, nothing is trained.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..artifacts import config_key
from ..contracts import CellSpec
from ..params import resolve_params
from ..registry import (NO_DEFENSE, build_attack, build_defense, lookup, plugin_infos, registry)
from .plan import experiment_kind


def _version(kind: str, name: str) -> str:
    """The version of the plugin that registered component ``name`` of ``kind``."""
    info = plugin_infos().get(lookup(kind, name).plugin)
    return info.version if info is not None else "?"


def _resolved(kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    return resolve_params(lookup(kind, name).obj, params or {}, f"{kind} {name!r}")


def spec_identity(spec: CellSpec) -> dict[str, Any]:
    """What :func:`spec_key` hashes: ``spec`` with every parameter resolved, and the versions."""
    from .. import __version__

    attack = build_attack(spec.attack, spec.attack_params)
    experiment_kind(attack, spec.attack)  # an attack no experiment drives fails here, as planning would
    out = asdict(spec)
    out.update(model_params=_resolved("model", spec.model, spec.model_params),
               dataset_params=_resolved("dataset", spec.dataset, spec.dataset_params),
               attack_params=attack.params)
    components = [("model", spec.model), ("dataset", spec.dataset), ("attack", spec.attack),
                  ("experiment", attack.kind)]
    if spec.defense != NO_DEFENSE:
        out["defense_params"] = build_defense(spec.defense, spec.defense_params).params
        components.append(("defense", spec.defense))
    if spec.transfer_from:
        source = spec.transfer_from
        out["transfer_from"] = {**source, "model_params": _resolved("model", source["model"],
                                                                     source.get("model_params") or {})}
        components.append(("model", source["model"]))
    trigger = getattr(attack, "trigger", None)
    if isinstance(trigger, str) and trigger in registry("trigger"):  # a backdoor's trigger, with its defaults
        out["trigger"] = {"name": trigger, "params": _resolved("trigger", trigger, {})}
        components.append(("trigger", trigger))
    return {"spec": out, "iqabench": __version__,
            "plugins": {f"{kind}:{name}": _version(kind, name) for kind, name in components}}


def spec_key(spec: CellSpec) -> str:
    """The spec's key in the store's ``plans`` table (the module docstring)."""
    return config_key(spec_identity(spec))
