"""Checks every component shares: a parameter that must be a positive number."""
from __future__ import annotations

from typing import Any

from ..errors import ParameterError


def check_positive(component: Any, *fields: str) -> None:
    """Refuse non-positive numeric parameters with an error naming them."""
    for f in fields:
        value = getattr(component, f)
        if not value > 0:
            raise ParameterError(f"{getattr(component, 'name', type(component).__name__)!r} parameter {f!r} must be > 0, got {value!r}")

