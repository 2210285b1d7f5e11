"""What a section of the board contributes: the small interface every
section module implements, so the page (:mod:`.page`) and the static site
(:mod:`.site`) assemble sections without knowing them.

A section is a function ``section(board: Board) -> Part | None`` listed in
:data:`iqabench.board.page.SECTIONS` (None, or a Part without tables: it has
nothing to show).  It reads the store through ``board`` (``board.store``, the
shared adversarial table ``board.adversarial``, the colours
``board.palette``), writes its CSV files and figures under ``board.out``
(figures through :mod:`.plots`) and returns a :class:`Part`:

* ``markdown``: its section of the Markdown leaderboard (``""``: none);
* ``files``: everything it wrote (listed by ``iqabench leaderboard``);
* ``id``, ``title``, ``intro``: its HTML page ``<id>.html`` and the
  paragraphs above it (Markdown: paragraphs, ``code``, ``### headings``);
* ``tables``: :class:`Table` s shown on the page, sortable and filterable;
* ``figures``: :class:`Figure` s embedded on the page;
* ``body``: any further HTML of the page (escaped by the section; links
  relative to the board's folder), after the tables and figures.

Tables follow one convention, so every number links to its cell: a column
``X`` may have companions ``X_ci_low``/``X_ci_high`` (shown as ``X ± half
width``), ``X_cell`` (``X`` links to that cell's page) and ``X_by`` (what
decided ``X``, shown after it: the overview's worst attack); a column ``cell``
links every other number of its row; a column ``card`` links the row's model to its entry card.
Columns listed in ``Table.hidden`` are not shown; ``Table.labels`` renames headers.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import pandas as pd

from ..run.store import Store
from .plots import Palette, base_attack
from .labels import model_name


@dataclass
class Table:
    """A table of a section's page: a caption and the frame to show."""

    caption: str
    frame: pd.DataFrame
    hidden: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)  # column -> header shown


@dataclass
class Figure:
    """A figure of a section's page: the file (under the board's folder) and its caption."""

    path: Path
    caption: str = ""


@dataclass
class Part:
    """What one section contributes to the board (see the module docstring)."""

    id: str
    title: str
    markdown: str = ""
    files: list[Path] = field(default_factory=list)
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    body: str = ""


class Board:
    """What every section reads: the store, the output folder, the adversarial
    table (:func:`.adversarial.adversarial_table`, computed once by the page)
    and the board's palette (computed on first use)."""

    def __init__(self, store: Store, out: Path, adversarial: pd.DataFrame):
        self.store, self.out, self.adversarial = store, Path(out), adversarial

    @functools.cached_property
    def palette(self) -> Palette:
        return palette_of(self.store)


def palette_of(store: Store) -> Palette:
    """The palette of a board of ``store``: every model and attack its finished cells name."""
    cells = store.cells(status="done")
    models = [model_name(c["config"]["model"]) for c in cells if isinstance(c["config"].get("model"), dict)]
    attacks = [base_attack(c["config"]["attack"]["name"]) for c in cells if isinstance(c["config"].get("attack"), dict)]
    return Palette.of(models, attacks)


def figures_of(files: list[Path]) -> list[Figure]:
    """The figures among a section's files, captioned by their names."""
    return [Figure(p, p.stem) for p in files if p.suffix in (".svg", ".png")]


def rendered_part(ident: str, title: str, rendered: tuple[str, list[Path]], intro: str,
                  table: Callable[[], Table]) -> Part | None:
    """The part of a section rendered as ``(markdown, files)``: ``table()`` on its page
    with the figures among its files; None when it rendered nothing."""
    md, files = rendered
    if not md:
        return None
    return Part(ident, title, md, files, intro, [table()], figures_of(files))
