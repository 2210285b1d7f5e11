"""The static site: ``index.html`` (the overview), a page per section, a page
per cell (its resolved configuration, summary, manifest and the command that
reproduces it) and the entry cards, in the board's folder.  It needs no
server and no network: the stylesheet and the script are copied from the
package (``assets/``), figures are files beside the pages, every link is
relative.  A pure function of the store, like the rest of the board.
"""
from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from ..artifacts import atomic_write_bytes
from ..contracts.context import gallery_dir
from ..run.store import Store
from .entries import entry_cards, write_cards
from .galleries import gallery_entries, shot_html
from .html import esc, figure_html, markdown, page, table_html
from .section import Part, Table

ASSETS = Path(__file__).with_name("assets")
#: the files of ``assets/`` the pages load
SITE_ASSETS = ("site.css", "site.js")


def page_name(part: Part) -> str:
    return "index.html" if part.id == "index" else f"{part.id}.html"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())
    return path


def _downloads(out: Path, parts: list[Part]) -> str:
    """The index page's links to the data behind the board."""
    files = sorted({p.relative_to(out).as_posix() for part in parts for p in part.files if p.suffix == ".csv"})
    links = [f'<a href="{esc(f)}">{esc(f)}</a>' for f in files]
    links += ['<a href="README.md">README.md</a> (the Markdown leaderboard)',
              '<a href="cards/index.html">cards/</a> (one JSON entry card per model x weights; '
              '<a href="assets/entry-card.schema.json">schema</a>)']
    return ("<h2>Data</h2><p>Tables as CSV, entry cards as JSON; the whole store: "
            "<code>iqabench export --format csv|parquet|json --what cells|images|runs</code>; "
            "citations: <code>iqabench cite</code>.</p><ul>" + "".join(f"<li>{x}</li>" for x in links) + "</ul>")


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def write_site(store: Store, out: Path, parts: list[Part]) -> list[Path]:
    """Write the site for ``parts`` into ``out``; returns every file written, ``index.html`` last."""
    out = Path(out)
    written = [_copy(ASSETS / name, out / "assets" / name) for name in (*SITE_ASSETS, "entry-card.schema.json")]
    written += write_cell_pages(store, out / "cells")
    nav = [(p.title, page_name(p)) for p in parts]
    written += write_cards_page(store, out / "cards", nav)
    for part in parts:
        body = [markdown(part.intro)]
        for i, table in enumerate(part.tables):
            body.append(table_html(table, f"{part.id}-table-{i}"))
        body.extend(figure_html(f, f.path.relative_to(out).as_posix()) for f in part.figures)
        body.append(part.body)
        if part.id == "index":
            body.append(_downloads(out, parts))
        written.append(_write(out / page_name(part), page(part.title, nav, page_name(part), "\n".join(body))))
    if not any(p.id == "index" for p in parts):
        written.append(_write(out / "index.html", page("Overview", nav, "index.html", "<p>No finished cells.</p>")))
    index = out / "index.html"
    return [*(p for p in written if p != index), index]


def write_cards_page(store: Store, out: Path, nav: list[tuple[str, str]]) -> list[Path]:
    """The entry cards (``<id>.json``) and ``index.html``, a table of them; returns the files written."""
    import pandas as pd

    written = write_cards(store, out)
    rows = [{"model": c["name"], "card": c["id"], "weights": c["weights"], "sha256": c["weights_sha256"],
             "flags": " ".join(c["flags"]), "training data": c["training_data"],
             "paper": (c["paper"] or {}).get("title"), "cells": len(c["scores"])} for c in entry_cards(store)]
    body = ("<p>One JSON card per model x weights (RobustBench style): the model, its paper, weights and sha256, "
            "training data, clean metrics, every score of every cell and flags; schema: "
            '<a href="../assets/entry-card.schema.json">entry-card.schema.json</a>.</p>'
            + table_html(Table("Entry cards", pd.DataFrame(rows)), "cards-table", cells_dir="../cells", cards_dir="."))
    return [*written, _write(out / "index.html", page("Entry cards", nav, "", body, root="../"))]


# ---------------------------------------------------------------- cell pages
def reproduce_command(spec: dict) -> str:
    """The ``iqabench run`` command that computes one cell, from its recorded cell spec."""
    def value(v) -> str:
        return json.dumps(v) if isinstance(v, (dict, list)) else str(v)

    args = ["iqabench", "run", "-m", spec["model"], "-d", spec["dataset"], "-a", spec["attack"]]
    for flag, key in (("--param", "attack_params"), ("--model-param", "model_params"),
                      ("--dataset-param", "dataset_params")):
        args += [a for k, v in sorted((spec.get(key) or {}).items()) for a in (flag, f"{k}={value(v)}")]
    if spec.get("defense", "none") != "none":
        args += ["--defense", spec["defense"]]
        args += [a for k, v in sorted((spec.get("defense_params") or {}).items())
                 for a in ("--defense-param", f"{k}={value(v)}")]
    for flag, key, default in (("--weights", "weights", "default"), ("--split", "split", "test"),
                               ("--seed", "seed", 0), ("--batch-size", "batch_size", 16), ("--limit", "limit", 0),
                               ("--train-limit", "train_limit", 0)):
        if spec.get(key, default) != default:
            args += [flag, str(spec[key])]
    return shlex.join(args)


def _pre(obj) -> str:
    return f"<pre>{esc(json.dumps(obj, indent=2, sort_keys=True))}</pre>"


def write_cell_pages(store: Store, out: Path) -> list[Path]:
    """One page per finished cell: what it is, its figures, how it was made and how to remake it;
    returns the files written (pages and gallery thumbnails)."""
    runs = {r["run_id"]: r for r in store.runs()}
    written = []
    nav = [("Overview", "index.html")]
    for cell in store.cells(status="done"):
        cfg, summary = cell["config"], cell["summary"] or {}
        run = runs.get(cell["run_id"]) or {}
        manifest = run.get("manifest") or {}
        entry = next((c for c in manifest.get("cells") or () if c.get("key") == cell["key"]), None)
        spec = summary.get("spec")
        body = [f"<p>Experiment <code>{esc(cell['kind'])}</code>, cell <code>{esc(cell['key'])}</code> "
                f"(the hash of its resolved configuration), run <code>{esc(cell['run_id'])}</code>.</p>"]
        if spec:
            body.append(f"<h2>Reproduce</h2><pre class=\"command\">{esc(reproduce_command(spec))}</pre>")
        if manifest.get("argv"):
            body.append(f"<p>The run that stored it: <code>{esc(shlex.join(manifest['argv']))}</code></p>")
        body.append(gallery_html(store, cell["key"], out, written, cell["kind"] == "backdoor"))
        figures = {k: v for k, v in summary.items() if k != "spec"}
        body.append("<h2>Summary</h2>" + _pre(figures))
        body.append("<h2>Resolved configuration</h2>" + _pre(cfg))
        if entry is not None:
            body.append("<h2>Manifest entry</h2>" + _pre({k: v for k, v in entry.items() if k != "config"}))
        if manifest:
            shown = {k: manifest.get(k) for k in ("run_id", "started", "python", "platform", "device", "cuda",
                                                  "torch_threads", "packages", "weights_files")}
            body.append("<h2>Run manifest</h2>" + _pre(shown))
        title = f"{cfg.get('model', {}).get('name', '?')} x {summary.get('attack') or cfg.get('attack', {}).get('name', '?')}"
        written.append(_write(out / f"{cell['key']}.html", page(title, nav, "", "\n".join(body), root="../")))
    return written


def gallery_html(store: Store, key: str, out: Path, written: list[Path], backdoor: bool = False) -> str:
    """The cell's gallery, its thumbnails copied into ``out/<key>/`` (appended to ``written``);
    nothing when the cell kept none.  ``backdoor``: the images are triggered at alpha = +1."""
    entries = gallery_entries(store, key)
    if not entries:
        return ""
    for entry in entries:
        written += [_copy(gallery_dir(store.path, key) / name, out / key / name) for name in entry["files"].values()]
    what = ("<h2>Images the trigger moved most</h2><p>Clean, triggered at alpha = +1, and their difference "
            if backdoor else "<h2>Images with the largest gain</h2><p>Clean, attacked, and their difference ")
    return (what + "amplified to the full grey range (thumbnails saved when the cell ran).</p>"
            f'<div class="gallery">{"".join(shot_html(e, f"{key}/") for e in entries)}</div>')
