"""From the cells a user asked for to the cells a run does.

Every name and parameter is resolved before any work starts
(:func:`validate`), ``*`` stands for every attack whose experiment kind is
in the wildcard and that suits the model (:func:`wildcard_attacks`), and
every defended cell brings its like-for-like baseline (:func:`with_baselines`).
"""
from __future__ import annotations

from ..contracts import CellSpec
from ..errors import IQABenchError, ParameterError
from ..models.build import parse_trained
from ..models.defended import baseline_spec, spec_identity
from ..params import resolve_params
from ..registry import NO_DEFENSE, build_attack, build_defense, lookup, registry


def wildcard_attacks(model_name: str) -> list[str]:
    """Every registered attack that suits ``model_name`` and whose experiment
    kind is in the wildcard (``Experiment.in_wildcard``: adversarial and
    universal attacks; a backdoor trains models of its own), unless the
    attack itself says it is not (``in_wildcard = False``: the query-based
    black-box attacks, thousands of model calls per image)."""
    model_cls = lookup("model", model_name).obj
    kinds = {name for name, entry in registry("experiment").items() if getattr(entry.obj, "in_wildcard", False)}
    return [
        name for name, entry in sorted(registry("attack").items())
        if getattr(entry.obj, "kind", "adversarial") in kinds and getattr(entry.obj, "in_wildcard", True)
        and entry.obj.suits(model_cls)
    ]


def experiment_kind(attack, name: str):
    """The registered experiment class that drives ``attack`` (registered as ``name``)."""
    experiments = registry("experiment")
    if attack.kind not in experiments:
        raise IQABenchError(f"attack {name!r} is a {attack.kind} attack, which `iqabench run` cannot drive yet "
                            f"(no experiment of that kind is registered: {', '.join(sorted(experiments))})")
    return experiments[attack.kind].obj


def validate_cell(spec: CellSpec) -> None:
    """Resolve every name and parameter of one cell (errors name the culprit)."""
    lookup("model", spec.model)
    lookup("dataset", spec.dataset)
    kind = experiment_kind(build_attack(spec.attack, spec.attack_params), spec.attack)
    if spec.transfer_from:
        if not getattr(kind, "transfers", False):
            raise IQABenchError(f"attack {spec.attack!r}: a {kind.name} experiment cannot transfer an attack "
                                f"from another model (--transfer-from)")
        source = spec.transfer_from
        resolve_params(lookup("model", source["model"]).obj, source.get("model_params") or {},
                       f"model {source['model']!r} (--transfer-from)")
        weights = str(source.get("weights", "default"))
        parse_trained(weights, f"--transfer-from {source['model']}@{weights}")
    parse_trained(spec.weights)  # a malformed trained:seed=N form is named before any work
    resolve_params(lookup("model", spec.model).obj, spec.model_params, f"model {spec.model!r}")
    resolve_params(lookup("dataset", spec.dataset).obj, spec.dataset_params, f"dataset {spec.dataset!r}")
    if spec.defense != NO_DEFENSE:
        build_defense(spec.defense, spec.defense_params)
    if not (isinstance(spec.jpeg_quality, int) and 0 <= spec.jpeg_quality <= 100):
        raise ParameterError(f"jpeg_quality must be an integer in 0..100 (0: no JPEG), got {spec.jpeg_quality!r}")


def validate(cells: list[CellSpec]) -> None:
    """Resolve every name and parameter before any work starts."""
    for spec in cells:
        validate_cell(spec)


def with_baselines(cells: list[CellSpec]) -> list[CellSpec]:
    """``cells`` plus the like-for-like baseline of every defended cell, each once.

    A defended row is only comparable with the same model made the same way
    without the defence (:func:`iqabench.models.defended.baseline_spec`: NT with
    ``lam = 0`` and its own recipe and seed; the undefended start model for a
    post-training defence), so the baseline runs wherever its defence runs.
    A missing baseline is inserted just before the first cell that needs it.
    """
    seen = {spec_identity(c) for c in cells}
    out: list[CellSpec] = []
    for spec in cells:
        twin = baseline_spec(spec)
        if twin is not None and spec_identity(twin) not in seen:
            seen.add(spec_identity(twin))
            out.append(twin)
        out.append(spec)
    return out
