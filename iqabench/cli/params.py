"""Parameters given on the command line: ``KEY=VALUE`` pairs, a dataset's
``--data-root``, and per-component targets (``NAME.KEY=VALUE``)."""
from __future__ import annotations

from typing import Any

from ..errors import ParameterError
from ..params import parse_assignments
from ..registry import NO_DEFENSE


def dataset_params(pairs: tuple[str, ...], data_root: str | None) -> dict[str, str]:
    """``--dataset-param`` pairs, with ``--data-root PATH`` as ``data_root=PATH``."""
    params = parse_assignments(pairs)
    if data_root:
        params["data_root"] = data_root
    return params


def parse_defense_params(pairs: dict[str, Any], defenses: list[str]) -> dict[str, dict[str, Any]]:
    """``{"nt.lam": 0, "rate": 0.4}`` -> per-defence parameters.

    ``NAME.KEY`` targets one defence; a bare ``KEY`` goes to every listed
    defence except ``none`` (each must then have it).
    """
    real = [d for d in defenses if d != NO_DEFENSE]
    out: dict[str, dict[str, Any]] = {d: {} for d in defenses}
    for key, value in pairs.items():
        if "." in key:
            name, param = key.split(".", 1)
            if name not in real:
                raise ParameterError(f"--defense-param {key}={value}: defence {name!r} is not among "
                                     f"--defense {', '.join(real) or NO_DEFENSE}")
            out[name][param] = value
        else:
            if not real:
                raise ParameterError(f"--defense-param {key}={value} given without a --defense")
            for name in real:
                out[name][key] = value
    return out
