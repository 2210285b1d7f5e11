"""One style of progress bar for every long loop (rich, with ETA)."""
from __future__ import annotations

import contextlib
import os

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)

console = Console(stderr=True)


def progress(enabled: bool = True) -> Progress:
    """A rich progress display; disabled with ``IQABENCH_PROGRESS=0``."""
    disable = not enabled or os.environ.get("IQABENCH_PROGRESS", "1") == "0"
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )


def download_progress(enabled: bool = True) -> Progress:
    """The same display for a download: bytes done of the size, speed, ETA."""
    disable = not enabled or os.environ.get("IQABENCH_PROGRESS", "1") == "0"
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=disable, transient=False)


@contextlib.contextmanager
def paused(bar: "Progress | None"):
    """Stop a live progress display while a nested one (e.g. a trainer's) runs."""
    live = bar is not None and getattr(bar, "live", None) is not None and bar.live.is_started
    if live:
        bar.stop()
    try:
        yield
    finally:
        if live:
            bar.start()
