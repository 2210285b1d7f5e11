"""One style of progress bar for every long loop (rich, with ETA)."""
from __future__ import annotations

import os

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

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
