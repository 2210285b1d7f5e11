"""The ``iqabench`` command line: the group and its error handling
(:mod:`.group`), ``iqabench run`` (:mod:`.run`), ``iqabench fetch``
(:mod:`.fetch`), ``export``/``cite``/``report`` (:mod:`.opendata`), the
other commands (:mod:`.commands`), and the commands plugins add
(``register_commands``).

Imports: anything in iqabench (the top layer), inside the commands: ``--help``
must not pay for torch.
"""
from __future__ import annotations

import sys

import click

from ..allocator import keep_freed_memory
from ..errors import IQABenchError
from . import commands, fetch, opendata, run  # noqa: F401  (they add their commands to the group)
from .group import cli

__all__ = ["cli", "main"]


def _load_plugin_commands() -> None:
    from ..registry import add_commands

    add_commands(cli)


def main() -> None:
    keep_freed_memory()
    try:
        _load_plugin_commands()
    except IQABenchError as exc:  # a broken third-party plugin
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    cli.main(prog_name="iqabench")
