"""``iqabench fetch``: download the published weights files models name.

The command knows no model: each registered model lists its files
(:meth:`iqabench.contracts.IQAModel.remote_files`: its own checkpoint, role
``weights``, and the ImageNet backbones its training recipes start from,
role ``backbone``) and :func:`iqabench.downloads.ensure` fetches, verifies
and records them.
"""
from __future__ import annotations

import os

import click

from ..errors import IQABenchError
from .group import cli


@cli.command()
@click.argument("models", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every registered model that publishes files.")
@click.option("--backbones", is_flag=True, help="Also the ImageNet backbones the training recipes start from.")
@click.option("--connect-timeout", type=float, metavar="S", help="Seconds to wait for a connection "
              "(default 10, or $IQABENCH_CONNECT_TIMEOUT).")
@click.option("--read-timeout", type=float, metavar="S", help="Seconds to wait for data "
              "(default 60, or $IQABENCH_READ_TIMEOUT).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def fetch(models, everything, backbones, connect_timeout, read_timeout, quiet) -> None:
    """Download (once) and verify the published weights of MODEL ... (or --all)
    into the caches their libraries read; with $IQABENCH_WEIGHTS_MIRROR=URL
    from <URL>/<file name>."""
    from ..downloads import ensure, used_files
    from ..registry import lookup, registry

    if not models and not everything:
        raise IQABenchError("iqabench fetch: name the models to fetch (e.g. `iqabench fetch hyperiqa`) or give --all")
    for var, value in (("IQABENCH_CONNECT_TIMEOUT", connect_timeout), ("IQABENCH_READ_TIMEOUT", read_timeout)):
        if value is not None:
            os.environ[var] = str(value)
    names = sorted(registry("model")) if everything else list(dict.fromkeys(models))
    for name in names:
        cls = lookup("model", name).obj
        files = [f for f in getattr(cls, "remote_files", lambda params=None: [])({})
                 if backbones or f.role == "weights"]
        if not files and not everything:
            click.echo(f"{name}: nothing to fetch (no published {'files' if backbones else 'weights'})")
        for file in files:
            command = f"iqabench fetch {name}" + (" --backbones" if file.role == "backbone" else "")
            path = ensure(file, f"model {name!r}", command, progress=not quiet)
            click.echo(f"{name}: {file.role} {path} (sha256:{used_files()[str(path.resolve())]})")
