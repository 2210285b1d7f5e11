"""Suites: a TOML grid of cells (model x dataset x attack x defence x seed).

A suite file::

    models = ["cnniqa"]
    datasets = ["embedded"]
    attacks = ["*"]          # every registered adversarial attack that suits the model
    seeds = [0]
    split = "test"
    batch_size = 16
    jpeg_quality = [0, 50]   # optional: score attacked images after JPEG (0: none; a list is a ladder)
    transfer = "matrix"      # optional: each cell also crafted on every other model of the suite

    defenses = ["none", "nt"]  # optional: "none" = undefended (the default)

    [params.ifgsm]           # parameters of one attack
    iters = 10

    [defense_params.nt]      # parameters of one defence
    lam = 0.001

    [params.fgsm]            # a list is a ladder: one cell per value, each
    eps = ["2/255", "4/255"] # the cell the single value would make (same key)

    [[grid]]                 # optional extra grids; unset keys are inherited
    attacks = ["fgsm"]
    params.fgsm = { eps = "4/255" }

A suite may also ``include = ["default", "other.toml"]``: the cells of those
suites (registered names or files, each expanded with its own keys) come
first, then its own grids, each distinct cell once -- the published
leaderboard is one suite made of the named suites behind its sections.

Any key not listed in ``KEYS`` is an error naming the file, the key and the
closest valid key: a typo must never silently fall back to a default.
"""
from __future__ import annotations

import difflib
import tomllib
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, get_origin

from ..artifacts import canonical_json
from ..contracts import CellSpec
from ..errors import IQABenchError, SuiteError

LIST_KEYS = ("models", "datasets", "attacks", "seeds", "defenses")
SCALAR_KEYS = ("name", "description", "split", "batch_size", "weights", "limit", "train_limit", "jpeg_quality",
               "transfer")
TABLE_KEYS = ("params", "model_params", "dataset_params", "defense_params")
KEYS = (*LIST_KEYS, *SCALAR_KEYS, *TABLE_KEYS)
ALL_ATTACKS = "*"


def _check_keys(table: dict, where: str, allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SuiteError(f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(allowed)}")


def _as_list(value: Any, key: str, where: str) -> list:
    if isinstance(value, (str, int)):
        return [value]
    if not isinstance(value, list) or not value:
        raise SuiteError(f"{where}: {key!r} must be a non-empty list")
    return value


def load_suite_text(text: str, where: str) -> dict:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{where}: invalid TOML: {exc}") from None
    _check_keys(data, where, (*KEYS, "grid", "include"))
    return data


def load_suite(path_or_name: str) -> tuple[dict, str]:
    """Read a suite from a file, or a suite registered by a plugin by name."""
    path = Path(path_or_name)
    if path.suffix == ".toml" or path.is_file():  # a directory of that name is not a suite file
        if not path.exists():
            raise SuiteError(f"suite file not found: {path}")
        return load_suite_text(path.read_text(), str(path)), path.read_text()
    from ..registry import suites

    known = suites()
    if path_or_name not in known:
        close = difflib.get_close_matches(path_or_name, list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SuiteError(f"no suite file or registered suite named {path_or_name!r}{hint}")
    text = known[path_or_name][0]
    return load_suite_text(text, f"suite {path_or_name!r}"), text


def expand(data: dict, where: str, attack_filter=None, check=None, _including: tuple[str, ...] = ()) -> list[CellSpec]:
    """All cells of a suite, its included suites' first, each distinct cell once.
    ``attack_filter(model_name)`` lists the attacks that ``"*"`` stands for
    (the runner asks the registry); ``check(cell)`` validates each cell's names
    and parameters (:func:`iqabench.run.plan.validate_cell`), its error then
    naming the suite file and grid the cell comes from."""
    cells: list[CellSpec] = []
    for name in _as_list(data.get("include", []), "include", where) if "include" in data else []:
        if name in _including:
            raise SuiteError(f"{where}: suite {name!r} includes itself ({' -> '.join((*_including, name))})")
        sub, _ = load_suite(str(name))
        cells += expand(sub, f"suite {name!r} (included by {where})", attack_filter, check, (*_including, str(name)))
    if "include" in data and not ({"models", "attacks", "datasets"} & set(data) or data.get("grid")):
        return _distinct(cells)  # a suite made only of other suites
    own = _own_cells(data, where, attack_filter, check)
    if data.get("transfer", "none") not in ("none", "matrix"):
        raise SuiteError(f"{where}: transfer must be 'matrix' or 'none', got {data['transfer']!r}")
    if data.get("transfer") == "matrix":
        own = transfer_matrix(own)
        for cell in own if check is not None else ():
            try:
                check(cell)
            except IQABenchError as exc:
                raise SuiteError(f"{where}: transfer = 'matrix': {exc}") from None
    return _distinct(cells + own)


def transfer_matrix(cells: list[CellSpec]) -> list[CellSpec]:
    """``cells`` and, after each, the same cell crafted on every other model
    of ``cells`` (a model: name, parameters and weights) -- the rows of the
    transfer matrix; its diagonal is the cell itself.  ``cells`` are all of a
    suite's own grids, so a model that only one grid names is a source for
    the cells of every other grid."""
    sources = list({canonical_json(m): m for m in (
        {"model": c.model, "model_params": c.model_params, "weights": c.weights} for c in cells)}.values())
    out = []
    for c in cells:
        out.append(c)
        own = {"model": c.model, "model_params": c.model_params, "weights": c.weights}
        out += [replace(c, transfer_from=s) for s in sources if s != own]
    return out


def _distinct(cells: list[CellSpec]) -> list[CellSpec]:
    seen: set[str] = set()
    out = []
    for c in cells:
        key = repr(sorted(asdict(c).items()))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _own_cells(data: dict, where: str, attack_filter=None, check=None) -> list[CellSpec]:
    grids = data.get("grid") or [{}]
    base = {k: v for k, v in data.items() if k not in ("grid", "include")}
    cells: list[CellSpec] = []
    for i, grid in enumerate(grids):
        first = len(cells)
        gwhere = f"{where} [[grid]] #{i + 1}" if data.get("grid") else where
        _check_keys(grid, gwhere, KEYS)
        merged = {**base, **grid}
        for table in TABLE_KEYS:
            merged[table] = {**base.get(table, {}), **grid.get(table, {})}
            for name, value in merged[table].items():
                if not isinstance(value, dict):
                    raise SuiteError(f"{gwhere}: [{table}.{name}] must be a table of parameters")
        for key in ("models", "datasets", "attacks"):
            if key not in merged:
                raise SuiteError(f"{gwhere}: missing key {key!r}")
        seeds = _as_list(merged.get("seeds", [0]), "seeds", gwhere)
        qualities = _as_list(merged.get("jpeg_quality", [0]), "jpeg_quality", gwhere)
        defenses = [str(d) for d in _as_list(merged.get("defenses", ["none"]), "defenses", gwhere)]
        used = {"params": set(), "model_params": set(), "dataset_params": set(), "defense_params": set(defenses)}
        for model in _as_list(merged["models"], "models", gwhere):
            attacks = _as_list(merged["attacks"], "attacks", gwhere)
            if ALL_ATTACKS in attacks:
                if attack_filter is None:
                    raise SuiteError(f"{gwhere}: '*' needs the attack registry")
                attacks = [a for a in attack_filter(model) if a not in attacks] + [a for a in attacks if a != ALL_ATTACKS]
            used["model_params"].add(model)
            used["params"].update(attacks)
            for dataset in _as_list(merged["datasets"], "datasets", gwhere):
                used["dataset_params"].add(dataset)
                for attack, defense, seed, quality in ((a, d, s, q) for a in attacks for d in defenses
                                                       for s in seeds for q in qualities):
                    for mp, dp, ap, fp in _ladders(
                            ("model", model, merged["model_params"].get(model, {})),
                            ("dataset", dataset, merged["dataset_params"].get(dataset, {})),
                            ("attack", attack, merged["params"].get(attack, {})),
                            ("defense", defense, merged["defense_params"].get(defense, {}))):
                        cells.append(CellSpec(
                            model=model, dataset=dataset, attack=attack, seed=int(seed),
                            split=merged.get("split", "test"),
                            batch_size=int(merged.get("batch_size", 16)),
                            weights=str(merged.get("weights", "default")),
                            limit=int(merged.get("limit", 0)),
                            train_limit=int(merged.get("train_limit", 0)),
                            model_params=mp, dataset_params=dp, attack_params=ap,
                            defense=defense, defense_params=fp, jpeg_quality=int(quality),
                        ))
        for table in TABLE_KEYS:
            for name, value in merged[table].items():
                if name not in used[table] and not data.get("grid"):
                    close = difflib.get_close_matches(name, sorted(used[table]), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise SuiteError(f"{gwhere}: [{table}.{name}] names nothing in the suite{hint}")
        for cell in cells[first:] if check is not None else ():
            try:
                check(cell)
            except IQABenchError as exc:  # a typo in a [params.X] table: name the file
                raise SuiteError(f"{gwhere}: {exc}") from None
    return cells


def _ladders(*tables: tuple[str, str, dict]) -> list[tuple[dict, ...]]:
    """Every combination of the ladders in ``tables`` (``(kind, name, params)``):
    a list value is one cell per element, in order, each cell holding the
    single value -- so a ladder's cell is the cell that value alone makes,
    with the same key.  A list for a parameter whose type is itself a
    sequence (the embedded dataset's ``photos``) is one value; a list of
    lists is its ladder."""
    combos: list[tuple[dict, ...]] = [()]
    for kind, name, params in tables:
        options: list[dict] = [{}]
        for key, value in params.items():
            values = value if isinstance(value, list) and _is_ladder(kind, name, key, value) else [value]
            options = [{**o, key: v} for o in options for v in values]
        combos = [(*c, dict(o)) for c in combos for o in options]
    return combos


def _is_ladder(kind: str, name: str, key: str, value: list) -> bool:
    if any(isinstance(v, list) for v in value):
        return True
    from ..params import param_specs
    from ..registry import lookup

    try:
        spec = param_specs(lookup(kind, name).obj).get(key)
    except IQABenchError:  # an unknown name: the cell check names it
        return True
    return spec is None or get_origin(spec.type) not in (list, tuple) and spec.type not in (list, tuple)
