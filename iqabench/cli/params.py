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


def targeted_params(pairs: dict[str, Any], names: list[str], option: str, what: str,
                    among: str) -> dict[str, dict[str, Any]]:
    """``{"nt.lam": 0, "rate": 0.4}`` -> parameters per component of ``names``.

    ``NAME.KEY`` targets one component (``--param ifgsm.iters=5``: another
    listed attack need not have ``iters``); a bare ``KEY`` goes to every listed
    one (each must then have it).  ``what`` (``"attack"``) and ``among``
    (``"--defense nt, prune"``) name the components and their list in errors.
    """
    out: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in pairs.items():
        name, _, param = key.rpartition(".")
        if name and name not in out:
            raise ParameterError(f"{option} {key}={value}: {what} {name!r} is not among {among}")
        if not out:
            raise ParameterError(f"{option} {key}={value} given without {among}")
        for target in [name] if name else list(out):
            out[target][param] = value
    return out


def defense_params(pairs: dict[str, Any], defenses: list[str]) -> dict[str, dict[str, Any]]:
    """``--defense-param`` pairs per listed defence (``none`` takes none)."""
    real = [d for d in defenses if d != NO_DEFENSE]
    out = targeted_params(pairs, real, "--defense-param", "defence",
                          f"--defense {', '.join(real)}" if real else "a --defense")
    return {d: out.get(d, {}) for d in defenses}
