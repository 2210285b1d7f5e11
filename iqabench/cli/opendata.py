"""The commands that publish a store: ``export`` (open data: CSV, Parquet,
JSON, entry cards), ``import`` (its inverse) and ``cite`` (BibTeX of what it used)."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import IQABenchError
from .group import DEFAULT_STORE, cli


def open_store(path: str):
    """The results store at ``path``; a one-line error when there is none."""
    from ..run.store import Store

    if not Path(path).exists():
        raise IQABenchError(f"results store not found: {path} (run `iqabench run` first)")
    return Store(path)


@cli.command()
@click.option("--store", default=DEFAULT_STORE, show_default=True, envvar="IQABENCH_STORE")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]), default="csv", show_default=True)
@click.option("--what", type=click.Choice(["cells", "images", "runs", "plans", "cards"]), default="cells",
              show_default=True,
              help="A table of the store as stored (JSON columns as text), or one JSON entry card per model x "
                   "weights (--format ignored).")
@click.option("--output", "-o", type=click.Path(),
              help="File to write (cards: a folder); default: export/<what>.<format> beside the store.")
def export(store, fmt, what, output) -> None:
    """Export the store's rows (open data) or its entry cards."""
    from ..board.entries import write_cards
    from ..board.export import export as write

    db = open_store(store)
    default = Path(store).parent / "export"
    if what == "cards":
        for path in write_cards(db, output or default / "cards"):
            click.echo(str(path))
        return
    click.echo(str(write(db, what, fmt, output or default / f"{what}.{fmt}")))


@cli.command(name="import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--store", default=DEFAULT_STORE, show_default=True, envvar="IQABENCH_STORE")
def import_(folder, store) -> None:
    """Add exported tables (FOLDER/cells.parquet|json|csv, images..., runs..., plans...) to a store
    (created if missing): a published board's data, to re-render or build on."""
    from ..run.opendata import import_tables
    from ..run.store import Store

    counts = import_tables(Store(store), folder)
    click.echo(f"{store}: " + ", ".join(f"{n} {name}" for name, n in counts.items()))


@cli.command()
@click.option("--store", default=DEFAULT_STORE, show_default=True, envvar="IQABENCH_STORE")
def cite(store) -> None:
    """Print BibTeX for every method and dataset the store's cells used."""
    from ..board.cite import bibliography

    click.echo(bibliography(open_store(store)), nl=False)


@cli.command()
@click.option("--store", default=DEFAULT_STORE, show_default=True, envvar="IQABENCH_STORE")
@click.option("--out", "-o", default="leaderboard", show_default=True, help="The site's folder.")
def report(store, out) -> None:
    """Render the store as a static site (index.html: open it in a browser, no server
    needed) with the CSV tables, the Markdown leaderboard and the entry cards."""
    from ..board.page import render

    index = render(open_store(store), out)[-1]
    click.echo(f"report: {index}")
