"""Plugin discovery, the registries of named components, and building one.

Built-in plugins and third-party plugins are found the same way: through the
``iqabench`` entry-point group.  Built-in ones belong to the ``iqabench``
distribution itself; the core's own experiment kinds
(:mod:`iqabench.experiments`) are a built-in plugin registered by module name
(:data:`CORE_PLUGINS`), so that this module imports nothing above it.
``IQABENCH_DISABLE_PLUGINS=1`` skips every third-party plugin (a
comma-separated list of entry-point names skips just those);
``IQABENCH_LOAD_PLUGINS=a,b`` loads only the named third-party plugins; a
name in either that is not an installed third-party plugin is an error.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import os
from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownNameError
from .params import resolve_params

ENTRY_POINT_GROUP = "iqabench"
BUILTIN_DISTRIBUTION = "iqabench"
DISABLE_ENV = "IQABENCH_DISABLE_PLUGINS"
LOAD_ENV = "IQABENCH_LOAD_PLUGINS"

#: component kind -> the hook that registers it
KINDS = {
    "model": "register_models",
    "dataset": "register_datasets",
    "attack": "register_attacks",
    "trigger": "register_triggers",
    "defense": "register_defenses",
    "experiment": "register_experiments",
}
#: the core's own plugins: name -> module (loaded like an entry point)
CORE_PLUGINS = {"experiments": "iqabench.experiments"}
#: the defence name of an undefended model (a cell's default)
NO_DEFENSE = "none"


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin came from, for ``iqabench plugins`` and error messages."""

    name: str
    distribution: str
    version: str
    builtin: bool


@dataclass(frozen=True)
class Registered:
    """A component registered by a plugin."""

    name: str
    obj: Any
    plugin: str
    description: str = ""


_manager: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}
_registries: dict[str, dict[str, Registered]] = {}
#: third-party plugins the switches left out -> the variable that did
_skipped: dict[str, str] = {}


def _canonical(dist_name: str) -> str:
    return dist_name.lower().replace("_", "-")


def _own_version() -> str:
    try:
        return md.version(BUILTIN_DISTRIBUTION)
    except md.PackageNotFoundError:
        return "?"


def _names(variable: str) -> list[str]:
    return [n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()]


def _switched_off(third_party: list[str], builtin: list[str]) -> dict[str, str]:
    """The third-party plugins ``IQABENCH_DISABLE_PLUGINS`` / ``IQABENCH_LOAD_PLUGINS``
    leave out, each with the variable that does.  A name in either that is not
    an installed third-party plugin is an error: a typo must not silently load
    (or skip) the wrong plugins."""
    disable_all = os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "all")
    disabled, only = ([] if disable_all else _names(DISABLE_ENV)), _names(LOAD_ENV)
    for variable, names in ((DISABLE_ENV, disabled), (LOAD_ENV, only)):
        for name in names:
            if name in builtin:
                raise PluginError(f"{variable} names {name!r}: {name!r} is built in and always loaded")
            if name not in third_party:
                close = difflib.get_close_matches(name, third_party, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise PluginError(f"{variable} names {name!r}, which is not an installed third-party plugin{hint} "
                                  f"(installed: {', '.join(sorted(third_party)) or 'none'})")
    off = {}
    for name in third_party:
        if disable_all or name in disabled:
            off[name] = DISABLE_ENV
        elif only and name not in only:
            off[name] = LOAD_ENV
    return off


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use."""
    global _manager
    if _manager is not None:
        return _manager
    pm = pluggy.PluginManager("iqabench")
    pm.add_hookspecs(hookspecs)
    for name, module in CORE_PLUGINS.items():
        pm.register(importlib.import_module(module), name=name)
        _infos[name] = PluginInfo(name, BUILTIN_DISTRIBUTION, _own_version(), True)
    entry_points = [(ep, ep.dist.metadata["Name"] if ep.dist is not None else "?")
                    for ep in md.entry_points(group=ENTRY_POINT_GROUP)]
    builtin = [*CORE_PLUGINS, *(ep.name for ep, dist_name in entry_points
                                if _canonical(dist_name) == BUILTIN_DISTRIBUTION)]
    _skipped.clear()
    _skipped.update(_switched_off([ep.name for ep, _ in entry_points if ep.name not in builtin], builtin))
    for ep, dist_name in entry_points:
        dist = ep.dist
        if ep.name in _skipped or pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin names itself
            raise PluginError(
                f"plugin {ep.name!r} (distribution {dist_name}) failed to load: "
                f"{type(exc).__name__}: {exc}; set {DISABLE_ENV}={ep.name} to skip it"
            ) from exc
        pm.register(module, name=ep.name)
        _infos[ep.name] = PluginInfo(ep.name, dist_name, dist.version if dist is not None else "?",
                                     ep.name in builtin)
    _manager = pm
    return pm


def register_plugin(module: Any, name: str, version: str = "test") -> None:
    """Register a plugin object directly (tests, notebooks)."""
    pm = get_plugin_manager()
    pm.register(module, name=name)
    _infos[name] = PluginInfo(name, name, version, builtin=False)
    _registries.clear()


def unregister_plugin(name: str) -> None:
    pm = get_plugin_manager()
    if pm.has_plugin(name):
        pm.unregister(name=name)
    _infos.pop(name, None)
    _registries.clear()


def plugin_infos() -> dict[str, PluginInfo]:
    get_plugin_manager()
    return dict(_infos)


def _describe(obj: Any) -> str:
    text = getattr(obj, "description", "") or (obj.__doc__ or "")
    return text.strip().splitlines()[0] if text.strip() else ""


def _collect(kind: str) -> dict[str, Registered]:
    """Call every plugin's hook for ``kind``, refusing duplicate names."""
    pm = get_plugin_manager()
    found: dict[str, Registered] = {}
    hook = getattr(pm.hook, KINDS[kind])
    for impl in hook.get_hookimpls():  # registration order
        plugin = impl.plugin_name

        def register(obj: Any, name: str | None = None, _plugin: str = plugin) -> None:
            key = name or getattr(obj, "name", None)
            if not key or not isinstance(key, str):
                raise PluginError(f"plugin {_plugin!r} registered a {kind} without a name: {obj!r}")
            if key in found:
                raise PluginError(
                    f"{kind} {key!r} is registered twice: by plugin {found[key].plugin!r} "
                    f"and by plugin {_plugin!r}"
                )
            found[key] = Registered(key, obj, _plugin, _describe(obj))

        impl.function(register=register)
    return found


def registry(kind: str) -> dict[str, Registered]:
    """All components of one kind, by name (cached until plugins change)."""
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}")
    if kind not in _registries:
        _registries[kind] = _collect(kind)
    return _registries[kind]


def lookup(kind: str, name: str) -> Registered:
    """The component ``name`` of ``kind``, or an error listing close matches."""
    entries = registry(kind)
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    known = ", ".join(sorted(entries)) or "none"
    raise UnknownNameError(f"unknown {kind} {name!r}{hint} (registered: {known}){_skipped_note()}")


def _skipped_note() -> str:
    """Why a name may be missing: the third-party plugins the switches left out."""
    by_variable: dict[str, list[str]] = {}
    for name, variable in sorted(_skipped.items()):
        by_variable.setdefault(variable, []).append(name)
    notes = [f"{DISABLE_ENV} switched off the third-party plugins: {', '.join(names)}" if variable == DISABLE_ENV
             else f"{LOAD_ENV} left out the third-party plugins: {', '.join(names)}"
             for variable, names in by_variable.items()]
    return "".join(f"; {note}" for note in notes)


def suites() -> dict[str, tuple[str, str, str]]:
    """Named suites registered by plugins: name -> (toml text, description, plugin)."""
    pm = get_plugin_manager()
    found: dict[str, tuple[str, str, str]] = {}
    for impl in pm.hook.register_suites.get_hookimpls():

        def register(name: str, toml_text: str, description: str = "", _p=impl.plugin_name):
            if name in found:
                raise PluginError(
                    f"suite {name!r} is registered twice: by plugin {found[name][2]!r} and by plugin {_p!r}"
                )
            found[name] = (toml_text, description, _p)

        impl.function(register=register)
    return found


def described_by(plugin: str) -> dict[str, dict[str, str]]:
    """What one plugin registered, by kind and name, with each one-line description
    (for ``iqabench plugins``)."""
    out: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        found = {r.name: r.description for r in registry(kind).values() if r.plugin == plugin}
        if found:
            out[kind] = dict(sorted(found.items()))
    found = {n: description for n, (_, description, p) in suites().items() if p == plugin}
    if found:
        out["suite"] = dict(sorted(found.items()))
    return out



def notify_result(record: dict) -> None:
    get_plugin_manager().hook.on_result(record=record)


def add_commands(cli: Callable) -> None:
    get_plugin_manager().hook.register_commands(cli=cli)


# ------------------------------------------------------------- building
def build(kind: str, name: str, params: dict[str, Any] | None = None) -> Any:
    """Instantiate the ``kind`` component ``name`` with validated parameters."""
    entry = lookup(kind, name)
    resolved = resolve_params(entry.obj, params or {}, f"{kind} {name!r}")
    return entry.obj(**resolved)


def build_attack(name: str, params: dict[str, Any] | None = None) -> Any:
    """The registered attack ``name`` with its parameters resolved (errors name both).

    ``attack.params`` -- part of every cell's key -- records the values the
    attack runs with, after its own ``__post_init__``: a profile that fills
    parameters left at None (BAIQA's) is then captured by the key, so
    changing a profile's numbers never reuses results made with the old ones.
    """
    entry = lookup("attack", name)
    resolved = resolve_params(entry.obj, params or {}, f"attack {name!r}")
    attack = entry.obj(**resolved)
    attack.params = {k: getattr(attack, k, v) for k, v in resolved.items()}
    return attack


def build_defense(name: str, params: dict[str, Any] | None = None) -> Any:
    """The registered defence ``name`` with its parameters resolved (errors name both)."""
    entry = lookup("defense", name)
    resolved = resolve_params(entry.obj, params or {}, f"defense {name!r}")
    defense = entry.obj(**resolved)
    defense.params = resolved
    return defense


def baseline_of(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "params"}`` of the like-for-like baseline of defence ``name`` with ``params``.

    A training-time defence names itself with its effect switched off (same
    recipe, seed and pipeline: :meth:`~iqabench.contracts.Defense.baseline_params`);
    otherwise the baseline is the undefended model, ``{"name": "none", "params": {}}``.
    """
    switch_off = build_defense(name, params).baseline_params()
    if switch_off is None:
        return {"name": NO_DEFENSE, "params": {}}
    return {"name": name, "params": {**params, **switch_off}}
