"""The static site (``iqabench report``): the overview shows every model x
attack of the store with its robustness and interval, every number links to
a page of its cell whose command recomputes that very cell, and every link
and image stays inside the site's folder.  (The rendering in a real browser:
tests/test_browser.py.)"""
from __future__ import annotations

import json
import re
import shlex
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from board_fixtures import ATTACKS, FAMILY, MODELS, small_store  # noqa: F401  (a fixture)
from models_for_tests import MeanLuma, Registers, TinyConvIQA, TinyData


class Page(HTMLParser):
    """Tables (id -> rows of (text, href) per cell) and every href/src of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.refs: list[str] = []
        self._table = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "src"):
            if attrs.get(key):
                self.refs.append(attrs[key])
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ["", None]
            self._row.append(self._cell)
        elif tag == "a" and self._cell is not None:
            self._cell[1] = attrs.get("href")

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data


@pytest.fixture(scope="module")
def site(small_store, tmp_path_factory):
    from click.testing import CliRunner

    from iqabench.cli import cli

    out = tmp_path_factory.mktemp("site")
    result = CliRunner().invoke(cli, ["report", "--store", str(small_store), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report: {out / 'index.html'}"
    return out


def _cells(store):
    return [(k, json.loads(c), json.loads(s)) for k, c, s in
            sqlite3.connect(store).execute("SELECT key, config, summary FROM cells WHERE status = 'done'")]


def test_the_adversarial_page_has_every_model_x_attack_with_its_robustness_interval_and_cell(small_store, site):
    rows = Page((site / "adversarial.html").read_text()).tables["adversarial-table-0"]
    header = [text.strip() for text, _ in rows[0]]
    # the fixture's plugin is no longer installed: a model shows as recorded, every parameter after its name
    body = {r[0][0].split()[0]: r for r in rows[1:]}
    assert sorted(body) == sorted(MODELS)
    cells = _cells(small_store)
    for model in MODELS:
        for attack in ATTACKS:
            mine = [(k, c, s) for k, c, s in cells if c["model"]["name"] == model and c["attack"]["name"] == attack]
            col = next(i for i, h in enumerate(header) if h.split(" (")[0] == attack)
            text, href = body[model][col]
            if len(mine) == 1:  # one cell: its robustness and the half-width of its 95% interval
                key, _, s = mine[0]
                low, high = s["robustness_ci"]
                assert text == f"{s['robustness']:.4f} ± {(high - low) / 2:.4f}"
                assert href == f"cells/{key}.html"
            else:  # a universal attack: the mean over its amplitudes, linked to the first amplitude's cell
                assert len(mine) > 1 and text == f"{np.mean([s['robustness'] for _, _, s in mine]):.4f}"
                assert href in {f"cells/{k}.html" for k, _, _ in mine}
            assert (site / href).is_file()


def test_the_overview_has_a_column_per_attack_family_with_its_worst_attack_named_and_linked(small_store, site):
    rows = Page((site / "index.html").read_text()).tables["index-table-0"]
    header = [text.strip() for text, _ in rows[0]]
    assert header[-3:] == ["one-step", "perceptual", "universal"]  # the families' documented order
    body = {r[0][0].split()[0]: r for r in rows[1:]}
    cells = _cells(small_store)
    for model in MODELS:
        for family in set(FAMILY.values()):
            members = {a for a, f in FAMILY.items() if f == family}
            mine = [(k, c, s) for k, c, s in cells if c["model"]["name"] == model and c["attack"]["name"] in members]
            text, href = body[model][header.index(family)]
            if any("amplitude" in c["attack"] for _, c, _ in mine):  # universal: the mean over amplitudes
                value = f"{np.mean([s['robustness'] for _, _, s in mine]):.4f}"
            else:  # the least robust attack's robustness and interval
                key, _, s = min(mine, key=lambda m: m[2]["robustness"])
                low, high = s["robustness_ci"]
                value = f"{s['robustness']:.4f} ± {(high - low) / 2:.4f}"
                assert href == f"cells/{key}.html"
            (attack,) = members
            shown = " ".join(text.split())  # the attack named, with its non-default parameters if any
            assert re.fullmatch(re.escape(f"{value} ({attack}") + r"( \(.+\))?\)", shown), shown
            assert (site / href).is_file()


def test_every_link_and_image_stays_in_the_site_and_exists(site):
    pages = sorted(site.rglob("*.html"))
    assert {"index.html", "adversarial.html", "universal.html"} <= {p.name for p in pages}
    for page in pages:
        for ref in Page(page.read_text()).refs:
            assert not re.match(r"^[a-z]+:|^//", ref), (page, ref)  # no scheme, no host: nothing off the disk
            target = (page.parent / ref.split("#")[0]).resolve()
            assert target.exists() and site.resolve() in (target, *target.parents), (page, ref)
    for svg in site.rglob("*.svg"):  # a figure loads nothing either (namespaces are names, not requests)
        text = svg.read_text()
        assert not re.search(r'(href|src)="(?!#)|url\((?!#)|@import', text), svg


def test_a_cells_page_gives_the_command_that_recomputes_that_cell(site, small_store, invoke, plugin, tmp_path):
    key, cfg, _ = next((k, c, s) for k, c, s in _cells(small_store)
                       if c["model"]["name"] == "test-tiny-cnn" and c["attack"]["name"] == "korhonen")
    page = (site / "cells" / f"{key}.html").read_text()
    command = re.search(r'<pre class="command">(.*?)</pre>', page, re.S).group(1)
    import html

    args = shlex.split(html.unescape(command))
    assert args[:2] == ["iqabench", "run"]
    plugin(Registers([TinyConvIQA, MeanLuma], [TinyData.make(n_train=4, n_test=5)]), "site-rerun")
    store = tmp_path / "again.sqlite"
    result = invoke([*args[1:], "--store", str(store), "--no-leaderboard", "-q"])
    assert result.exit_code == 0, result.output
    assert [k for k, _, _ in _cells(store)] == [key]  # the same configuration: the same key


def test_the_markdown_board_is_the_overview_and_links_to_the_site(site, small_store):
    readme = (site / "README.md").read_text()
    assert "## Overview" in readme and "| model | weights | dataset |" in readme
    assert "| model | weights | dataset | attack | params |" not in readme  # the full table is adversarial.md's
    assert "[Adversarial attacks](adversarial.html)" in readme and "(adversarial.md)" in readme
    universal_means = len(MODELS)  # one mean row per model for the one universal attack
    n_cells = len(_cells(small_store))
    rows = [line for line in (site / "adversarial.md").read_text().splitlines() if line.startswith("| test-")]
    assert len(rows) == n_cells + universal_means


def _tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_a_render_removes_the_files_an_earlier_render_wrote_and_nothing_a_user_put_there(small_store, tmp_path):
    """Render a store, then a smaller one into the same folder: the folder holds exactly
    what a fresh render of the smaller store writes, plus the user's own files."""
    from iqabench.board.page import render
    from iqabench.run.store import Store

    out = tmp_path / "board"
    render(Store(small_store), out)
    mine = {"notes.txt": "mine", "cells/notes.txt": "mine too", "adversarial/my-plot.svg": "<svg/>"}
    for name, text in mine.items():
        (out / name).write_text(text)
    smaller = tmp_path / "smaller" / "store.sqlite"
    smaller.parent.mkdir()
    db = sqlite3.connect(smaller)
    with sqlite3.connect(small_store) as source:
        source.backup(db)  # the store is in WAL mode: a file copy may miss its latest pages
    dropped = [k for (k,) in db.execute("SELECT key FROM cells WHERE attack = 'korhonen'")]
    assert dropped
    db.execute("DELETE FROM cells WHERE attack = 'korhonen'")
    db.commit()
    db.close()
    render(Store(smaller), out)
    fresh = tmp_path / "fresh"
    render(Store(smaller), fresh)
    assert _tree(out) == _tree(fresh) | set(mine)
    assert _tree(fresh) == {*(fresh / "board-files.txt").read_text().split(), "board-files.txt"}  # it owns all it wrote
    assert all((out / name).read_text() == text for name, text in mine.items())
    assert not any((out / "cells" / f"{k}.html").exists() or (out / "cells" / k).exists() for k in dropped)
