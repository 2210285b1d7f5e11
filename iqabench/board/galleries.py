"""The galleries page: per cell, the image the attack (or a backdoor's trigger) raised most --
clean, attacked, amplified difference, with scores, PSNR and SSIM -- linked
to the cell's page, which shows all the images the cell kept
(:mod:`iqabench.experiments.gallery` saves them beside the store)."""
from __future__ import annotations

import json

from ..contracts.context import gallery_dir
from ..run.store import Store
from .html import esc, number
from .section import Board, Part

INTRO = """Per cell, the image whose score the attack raised most: clean, attacked
(a backdoor cell: triggered at alpha = +1), and their difference amplified to
the full grey range. A cell's page shows every image it kept (`iqabench run
--gallery K`, default 3).
"""


def gallery_entries(store: Store, key: str) -> list[dict]:
    """The entries of cell ``key``'s gallery, largest gain first; none when it kept none."""
    index = gallery_dir(store.path, key) / "gallery.json"
    return json.loads(index.read_text()) if index.is_file() else []


def shot_html(entry: dict, prefix: str) -> str:
    """One image of a gallery: its three thumbnails (under ``prefix``) and its figures."""
    images = "".join(f'<img src="{esc(prefix)}{esc(entry["files"][kind])}" alt="{esc(entry["name"])}: {label}" '
                     f'title="{label}">' for kind, label in (("clean", "clean"), ("attacked", "attacked"),
                                                             ("diff", "difference")))
    return (f'<div class="shot">{images}<p><strong>{esc(entry["name"])}</strong>: score '
            f'{number(entry["clean"])} &rarr; {number(entry["attacked"])} (gain {number(entry["gain"])}), '
            f'PSNR {number(entry["psnr"])} dB, SSIM {number(entry["ssim"])}; difference amplified '
            f'&times;{entry["amplification"]:.3g} around grey.</p></div>')


def part(board: Board) -> Part | None:
    """The galleries page (nothing when no cell kept images); the thumbnails are the
    cell pages' copies (``cells/<key>/``)."""
    shots = []
    for cell in board.store.cells(status="done"):
        entries = gallery_entries(board.store, cell["key"])
        if entries:
            cfg, summary = cell["config"], cell["summary"] or {}
            title = f'{cfg["model"]["name"]} x {summary.get("attack") or cfg["attack"]["name"]} on {cfg["dataset"]["name"]}'
            shots.append(f'<div><h3><a href="cells/{esc(cell["key"])}.html">{esc(title)}</a></h3>'
                         f'{shot_html(entries[0], "cells/" + cell["key"] + "/")}</div>')
    if not shots:
        return None
    return Part("galleries", "Galleries", "", [], INTRO, body=f'<div class="gallery">{"".join(shots)}</div>')
