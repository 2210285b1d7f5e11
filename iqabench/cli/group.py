"""The ``iqabench`` command group: every user-fixable error is one line.

Heavy modules (torch, pyiqa) are imported inside the commands, so that
``iqabench --help`` stays fast.  Every user-fixable error is printed as one
line ``Error: ...`` with a non-zero exit status, never as a traceback
(``IQABENCH_DEBUG=1`` shows tracebacks for unexpected errors).
"""
from __future__ import annotations

import os

import click

from .. import __version__
from ..errors import IQABenchError

DEFAULT_STORE = "iqabench-results/store.sqlite"


class IQABenchGroup(click.Group):
    """Turns every error into one line ``Error: ...`` and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except IQABenchError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("Error: interrupted (finished batches are kept; rerun to resume)", err=True)
            ctx.exit(130)
        except Exception as exc:  # never a bare traceback
            if os.environ.get("IQABENCH_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            click.echo(f"Error: unexpected {type(exc).__name__}: {first} (set IQABENCH_DEBUG=1 for the traceback)", err=True)
            ctx.exit(1)


@click.group(cls=IQABenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iqabench")
def cli() -> None:
    """Benchmark the security of image-quality-assessment models.

    Run `iqabench run` with no arguments for the default benchmark.
    """

