"""Typed parameters of plugin components.

A component's parameters are the keyword arguments of its constructor, with
their annotations and defaults -- for a dataclass, its fields.  Values given
on the command line (``--param eps=10/255``) or in a suite file are coerced
to the annotated type here, so that every plugin gets the same validation and
the same one-line errors naming the parameter and the plugin.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, get_args, get_origin

from .errors import ParameterError

_MISSING = inspect.Parameter.empty


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: Any
    default: Any

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def type_name(self) -> str:
        if get_origin(self.type) is Literal:
            return " | ".join(repr(a) for a in get_args(self.type))
        return getattr(self.type, "__name__", str(self.type))


def param_specs(cls: Any, skip: tuple[str, ...] = ()) -> dict[str, ParamSpec]:
    """The typed parameters of ``cls``'s constructor (or a function)."""
    target = cls.__init__ if inspect.isclass(cls) else cls
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    specs: dict[str, ParamSpec] = {}
    for p in inspect.signature(target).parameters.values():
        if p.name == "self" or p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        specs[p.name] = ParamSpec(p.name, hints.get(p.name, Any), p.default)
    return specs


def _parse_float(text: str) -> float:
    text = text.strip()
    if "/" in text:  # "10/255" is how papers write budgets
        num, den = text.split("/", 1)
        return float(Fraction(num.strip())) / float(Fraction(den.strip()))
    return float(text)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def coerce(value: Any, typ: Any, where: str) -> Any:
    """Convert ``value`` (often a string) to ``typ`` or raise ParameterError."""
    origin = get_origin(typ)
    if typ is Any:
        return value
    if origin is Literal:
        choices = get_args(typ)
        for c in choices:
            if value == c or (isinstance(value, str) and str(c) == value):
                return c
        raise ParameterError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "")):
            if type(None) in get_args(typ):
                return None
        errors = []
        for a in args:
            try:
                return coerce(value, a, where)
            except ParameterError as e:
                errors.append(str(e))
        raise ParameterError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin in (tuple, list):
        items = value.split(",") if isinstance(value, str) else list(value)
        args = get_args(typ)
        item_type = args[0] if args else Any
        out = [coerce(v, item_type, where) for v in items]
        return tuple(out) if origin is tuple else out
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
            raise ValueError
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return _parse_float(value) if isinstance(value, str) else float(value)
        if typ is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.strip())
        if typ is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (ValueError, ZeroDivisionError, TypeError):
        kind = getattr(typ, "__name__", str(typ))
        raise ParameterError(f"{where}: expected {kind}, got {value!r}") from None
    return value


def resolve_params(cls: Any, given: dict[str, Any], owner: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """All parameters of ``cls`` with ``given`` coerced and defaults filled in.

    ``owner`` names the component in errors, e.g. ``"attack 'ifgsm'"``.
    """
    specs = param_specs(cls, skip)
    unknown = [k for k in given if k not in specs]
    if unknown:
        import difflib

        k = unknown[0]
        close = difflib.get_close_matches(k, list(specs), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        have = ", ".join(specs) or "no parameters"
        raise ParameterError(f"{owner} has no parameter {k!r}{hint}; it takes: {have}")
    resolved: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in given:
            resolved[name] = coerce(given[name], spec.type, f"{owner} parameter {name!r}")
        elif spec.required:
            raise ParameterError(f"{owner} requires parameter {name!r} ({spec.type_name()})")
        else:
            resolved[name] = spec.default
    return resolved


def parse_assignments(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["eps=10/255", "iters=5"]`` -> dict, with a clear error for junk."""
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"--param {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out
