"""What to cite for a store: the BibTeX of every method and dataset its cells used.

The contract is one optional class attribute: a registered component (model,
dataset, attack, trigger, defence, experiment kind) sets ``citation`` to the
BibTeX entry (one ``@type{key, ...}`` string, or a tuple of them) of the work
it implements; ``iqabench cite`` prints the entries of every component a
store's cells name, each once, and lists the components that declare none.
A plugin that is no longer installed is listed as such, never an error.
"""
from __future__ import annotations

import re

from ..registry import lookup
from ..run.store import Store

_KEY = re.compile(r"@\w+\s*\{\s*([^,\s]+)\s*,")
_FIELD = r"\b{}\s*=\s*[{{\"](.+?)[}}\"]\s*,?\s*\n"


def used_components(store: Store) -> list[tuple[str, str]]:
    """``(kind, name)`` of every component the store's finished cells name, in first-use order."""
    seen: dict[tuple[str, str], None] = {}
    for cell in store.cells(status="done"):
        cfg = cell["config"]
        seen[("experiment", cell["kind"])] = None
        for kind in ("model", "dataset", "attack", "trigger", "defense"):
            name = (cfg.get(kind) or {}).get("name") if isinstance(cfg.get(kind), dict) else None
            if kind == "attack" and cfg.get("victim") == "clean":
                continue  # a backdoor's clean ("w/o") model: no attack was applied
            if name:
                seen[(kind, name)] = None
    return list(seen)


def citations_of(kind: str, name: str) -> list[str] | None:
    """The BibTeX entries component ``name`` declares (``[]``: none declared), or
    None when its plugin is not installed."""
    try:
        cited = getattr(lookup(kind, name).obj, "citation", None)
    except Exception:  # a plugin no longer installed
        return None
    if not cited:
        return []
    return [cited] if isinstance(cited, str) else list(cited)


def bib_key(entry: str) -> str | None:
    """The citation key of a BibTeX entry."""
    match = _KEY.search(entry)
    return match.group(1) if match else None


def bib_field(entry: str, field: str) -> str | None:
    """One field's value of a BibTeX entry (``title``, ``year``, ...), braces kept inside."""
    match = re.search(_FIELD.format(field), entry + "\n", re.S | re.I)
    return " ".join(match.group(1).split()) if match else None


def bibliography(store: Store) -> str:
    """The BibTeX of every component the store used (each entry once), then a
    ``%`` comment naming the components that declare no citation."""
    entries: dict[str, str] = {}
    missing = []
    for kind, name in used_components(store):
        found = citations_of(kind, name)
        if not found:
            missing.append(f"{kind} {name}" + (" (not installed)" if found is None else ""))
        for entry in found or ():
            entries.setdefault(bib_key(entry) or entry, entry.strip())
    text = "\n\n".join(entries.values())
    if missing:
        text += ("\n\n" if text else "") + "% no citation declared: " + ", ".join(missing)
    return text + "\n"
