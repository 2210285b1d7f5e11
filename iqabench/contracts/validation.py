"""Checks every component shares: a parameter that must be a positive number."""
from __future__ import annotations

import math
from typing import Any

from ..errors import ParameterError


def check_positive(component: Any, *fields: str) -> None:
    """Refuse a parameter that is not a finite number > 0, naming it: a budget
    of ``inf`` (``--param eps=inf``) would silently turn an attack unbounded."""
    for f in fields:
        value = getattr(component, f)
        if not (value > 0 and math.isfinite(value)):
            owner = getattr(component, "name", type(component).__name__)
            raise ParameterError(f"{owner!r} parameter {f!r} must be a finite number > 0, got {value!r}")
