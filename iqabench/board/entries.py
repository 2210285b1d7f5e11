"""Entry cards: one JSON document per model x weights entry of the board, in
the spirit of RobustBench's ``model_info/*.json``: the model's name and
parameters, the paper it implements (its plugin's ``citation``), its weights
and their sha256, what it was trained on, its clean metrics, every score of
every finished cell, and flags a reader must see (``random-init``: an
untrained network; ``random-backbone``: trained from a random backbone where
the paper starts from ImageNet); a defended model (its own weights) is an
entry of its own and names its ``defense``.  Each card validates against the JSON schema
shipped in the package (:data:`SCHEMA_PATH`).  A pure function of the store.
"""
from __future__ import annotations

import json
import numbers
import re
from pathlib import Path
from typing import Any

from ..artifacts import atomic_write_bytes, config_key
from ..registry import lookup
from ..run.store import Store
from .cite import bib_field, bib_key, citations_of
from .output import safe_name

SCHEMA_PATH = Path(__file__).with_name("assets") / "entry-card.schema.json"
SCHEMA_ID = "iqabench-entry-card/1"
_SHA = re.compile(r"^(?P<file>.+?) \(sha256:(?P<sha>[0-9a-f]{16,64})\)$")


def schema() -> dict:
    """The entry cards' JSON schema."""
    return json.loads(SCHEMA_PATH.read_text())


def _weights(cfg: dict) -> str:
    return str(cfg["model"].get("weights") or "trained in the cell")


def entry_id(name: str, weights: str, params: dict) -> str:
    """A card's file stem: readable, and unique per model x weights x parameters."""
    return f"{safe_name(name)}-{safe_name(weights)[:40]}-{config_key([name, weights, params])[:8]}"


def _full_sha(weights: str, files: dict[str, str]) -> str | None:
    """The weights file's sha256: the manifests' full digest when they recorded the file, else the prefix the label names."""
    match = _SHA.match(weights)
    if not match:
        return None
    for path, digest in files.items():
        if Path(path).name == match["file"] and str(digest).startswith(match["sha"]):
            return str(digest)
    return match["sha"][:16]


def _paper(name: str) -> dict | None:
    found = citations_of("model", name)
    if not found:
        return None
    return {"key": bib_key(found[0]), "title": bib_field(found[0], "title"), "year": bib_field(found[0], "year"),
            "bibtex": found[0]}


def _model_class(name: str):
    try:
        return lookup("model", name)
    except Exception:  # a plugin no longer installed
        return None


def _score(cell: dict) -> dict[str, Any]:
    cfg, s = cell["config"], cell["summary"] or {}
    metrics = {k: v for k, v in s.items() if isinstance(v, numbers.Real) and not isinstance(v, bool) and k != "n"}
    ci = {k[:-3]: v for k, v in s.items() if k.endswith("_ci") and isinstance(v, list) and len(v) == 2}
    amplitude = cfg["attack"].get("amplitude")
    return {"cell": cell["key"], "kind": cell["kind"],
            "dataset": f'{cfg["dataset"]["name"]}/{cfg["dataset"].get("split", "")}',
            "attack": s.get("attack") or cfg["attack"]["name"] + (f" @{amplitude:g}" if amplitude is not None else ""),
            "attack_params": cfg["attack"].get("params") or {}, "defense": cfg.get("defense"),
            "seed": cfg.get("seed"), "n": s.get("n"), "metrics": metrics, "ci": ci}


def entry_cards(store: Store) -> list[dict[str, Any]]:
    """One card per model x weights (x model parameters) of the store's finished cells."""
    files: dict[str, str] = {}
    facts: dict[str, dict] = {}  # cell key -> its entry in the manifests (the latest run's)
    for run in store.runs():
        files.update(run["manifest"].get("weights_files") or {})
        facts.update({c["key"]: c for c in run["manifest"].get("cells") or () if "key" in c})
    cards: dict[str, dict] = {}
    for cell in store.cells(status="done"):
        cfg, s = cell["config"], cell["summary"] or {}
        if not isinstance(cfg.get("model"), dict) or "attack" not in cfg:
            continue
        name, weights, params = cfg["model"]["name"], _weights(cfg), cfg["model"].get("params") or {}
        card_id = entry_id(name, weights, params)
        entry = _model_class(name)
        card = cards.setdefault(card_id, {
            "schema": SCHEMA_ID, "id": card_id, "name": name, "description": entry.description if entry else None,
            "model_params": params, "defense": cfg.get("defense"), "paper": _paper(name), "weights": weights,
            "weights_sha256": _full_sha(weights, files), "backbone": cfg["model"].get("backbone"),
            "training_data": (facts.get(cell["key"]) or {}).get("training_data"),
            "lower_better": s.get("lower_better"), "score_range": s.get("score_range"),
            "clean": {}, "flags": [], "scores": []})
        flags = [f for f, on in (("random-init", weights.startswith("random-init")),
                                 ("random-backbone", s.get("backbone") == "random")) if on]
        card["flags"] = sorted({*card["flags"], *flags})
        if "clean_srocc" in s:  # a defended model is an entry of its own: its clean cost is its
            card["clean"].setdefault(f'{cfg["dataset"]["name"]}/{cfg["dataset"].get("split", "")}', {
                "srocc": s.get("clean_srocc"), "plcc": s.get("clean_plcc"), "rmse": s.get("clean_rmse"),
                "n": s.get("n"), "test_srocc": (s.get("model_test") or {}).get("srocc")})
        card["scores"].append(_score(cell))
    return list(cards.values())


def write_cards(store: Store, out: str | Path) -> list[Path]:
    """Every entry card as ``<out>/<id>.json``; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for card in entry_cards(store):
        path = out / f'{card["id"]}.json'
        atomic_write_bytes(path, (json.dumps(card, indent=1, sort_keys=True, allow_nan=False) + "\n").encode())
        written.append(path)
    return written
