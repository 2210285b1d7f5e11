"""HTML pieces of the static site: the page frame, tables that sort and
filter (``assets/site.js``), figures, and the little Markdown the sections'
introductions use.  Everything is escaped; nothing refers outside the
site's folder (no CDN, no font, no script from the network)."""
from __future__ import annotations

import html
import math
import numbers
import re

import pandas as pd

from .section import Figure, Table

_CODE = re.compile(r"`([^`]+)`")
_EM = re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])")


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def inline(text: str) -> str:
    """Escaped text with Markdown's ``code`` and *emphasis*."""
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", esc(text))
    return _EM.sub(lambda m: f"<em>{m.group(1)}</em>", out)


def markdown(text: str, skip_title: bool = True) -> str:
    """Paragraphs and ``#`` headings of a section's introduction (a leading heading dropped: the page has its title)."""
    blocks, out = [b.strip() for b in re.split(r"\n\s*\n", text.strip()) if b.strip()], []
    for i, block in enumerate(blocks):
        lines = block.splitlines()
        while lines and lines[0].startswith("#"):
            level = min(len(lines[0]) - len(lines[0].lstrip("#")) + 1, 4)
            if not (skip_title and i == 0 and not out):
                out.append(f"<h{level}>{inline(lines[0].lstrip('#').strip())}</h{level}>")
            lines = lines[1:]
        if lines:
            out.append(f"<p>{inline(' '.join(line.strip() for line in lines))}</p>")
    return "\n".join(out)


def is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def number(v) -> str:
    """A figure as the board prints it; ``n/a`` where none was computed."""
    if v is None or (is_number(v) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, numbers.Integral):
        return str(v)
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"


def _companion(column: str) -> bool:
    return column.endswith(("_ci_low", "_ci_high", "_cell", "_by")) or column in ("cell", "card")


def _link(row: pd.Series, column: str, columns) -> str | None:
    """The cell a number links to: ``X_cell``, else ``<prefix>_cell``, else the row's ``cell``."""
    prefix = column.split("_", 1)[0]
    for key in (f"{column}_cell", f"{prefix}_cell", "cell"):
        if key in columns and isinstance(row[key], str) and row[key]:
            return row[key].split(",")[0]
    return None


def table_html(table: Table, ident: str, cells_dir: str = "cells", cards_dir: str = "cards") -> str:
    """A sortable, filterable table; numbers with their intervals, linked to their cells."""
    df = table.frame
    columns = [c for c in df.columns if not _companion(c) and c not in table.hidden]
    numeric = {c for c in columns if len(df) and df[c].map(lambda v: is_number(v) or v is None).all()
               and df[c].map(is_number).any()}
    head = "".join(f'<th class="{"num" if c in numeric else "text"}" scope="col">'
                   f'<button type="button">{esc(table.labels.get(c, c))}</button></th>' for c in columns)
    body = []
    for _, row in df.iterrows():
        tds = []
        for c in columns:
            v = row[c]
            if c in numeric:
                low, high = row.get(f"{c}_ci_low"), row.get(f"{c}_ci_high")
                text = number(v)
                if is_number(low) and is_number(high) and math.isfinite(low) and math.isfinite(high) and text != "n/a":
                    text += f" ± {(high - low) / 2:.4f}"
                link = _link(row, c, df.columns)
                shown = f'<a href="{cells_dir}/{esc(link)}.html">{esc(text)}</a>' if link and text != "n/a" else esc(text)
                by = row.get(f"{c}_by")
                if isinstance(by, str) and by and text != "n/a":
                    shown += f' <span class="by">({esc(by)})</span>'
                sort = repr(float(v)) if is_number(v) and math.isfinite(v) else ""
                tds.append(f'<td class="num" data-v="{sort}">{shown}</td>')
            else:
                text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                if c == "model" and "card" in df.columns and isinstance(row["card"], str):
                    shown = f'<a href="{cards_dir}/{esc(row["card"])}.json">{esc(text)}</a>'
                else:
                    shown = esc(text)
                tds.append(f'<td data-v="{esc(text)}">{shown}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    caption = f"<caption>{esc(table.caption)}</caption>" if table.caption else ""
    return (f'<div class="table-tools"><input type="search" class="filter" data-table="{ident}" '
            f'placeholder="filter rows (all words must match)" aria-label="filter {esc(table.caption)}"></div>'
            f'<div class="scroll"><table class="board" id="{ident}">{caption}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def figure_html(figure: Figure, src: str) -> str:
    return (f'<figure><img src="{esc(src)}" alt="{esc(figure.caption or figure.path.stem)}">'
            f'<figcaption>{esc(figure.caption or figure.path.stem)}</figcaption></figure>')


def page(title: str, nav: list[tuple[str, str]], current: str, body: str, root: str = "") -> str:
    """A complete page: the shared stylesheet and script (relative paths), the navigation, the body."""
    current_mark = ' aria-current="page"'
    links = " ".join(f'<a href="{root}{esc(href)}"{current_mark if href == current else ""}>{esc(label)}</a>'
                     for label, href in nav)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)} - iqabench</title><link rel="stylesheet" href="{root}assets/site.css"></head>'
            f'<body><header><strong>iqabench</strong><nav>{links}</nav></header><main><h1>{esc(title)}</h1>\n'
            f'{body}\n</main><footer>Generated from the results store by <code>iqabench report</code>; '
            f'works offline, no server.</footer><script src="{root}assets/site.js"></script></body></html>\n')
