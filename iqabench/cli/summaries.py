"""What ``iqabench run`` prints after a run: a table of the evasion cells (the
five scores), one of the backdoor cells (BAIQA's metrics), and a line per
cell of any other experiment kind (its summary's figures)."""
from __future__ import annotations

from ..registry import NO_DEFENSE

#: the width a table may take off a terminal (its natural width, in practice)
_UNLIMITED = 10_000


def _number(value, spec: str) -> str:
    """A figure of a summary; ``n/a`` where none could be computed (stored as null)."""
    return "n/a" if value is None or value != value else format(value, spec)


def _defended(name: str, summary: dict) -> str:
    """``name`` (the model or the victim) with the cell's defence, if any."""
    defense = summary["spec"].get("defense", NO_DEFENSE)
    return name + (f" +{defense}" if defense != NO_DEFENSE else "")


def _print_table(console, table) -> None:
    """On a terminal as it fits; elsewhere at the table's natural width."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.measure(table, options=console.options.update_width(_UNLIMITED)).maximum
    before = console.width
    console.width = max(before, width)
    try:
        console.print(table)
    finally:
        console.width = before


def print_summaries(summaries: list[dict], console=None) -> None:
    """Both tables (a table without rows is not printed), then the other
    cells, on ``console`` (default: stdout).  Off a terminal (a log, a pipe)
    a table prints at its natural width, not cut to 80 columns: a log keeps
    every figure."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()

    from ..board.backdoor import format_metric

    evasion = Table(title="iqabench results (normalised with each model's fixed clean range)")
    for col in ("model", "dataset", "attack", "n", "abs. gain", "rel. gain", "robustness", "Wasserstein", "energy",
                "PSNR", "score RMSE"):
        evasion.add_column(col)
    backdoor = Table(title="iqabench backdoor results (benign metrics on clean test images)")
    for col in ("model", "attack", "victim", "trigger", "n", "PLCC", "SROCC", "RMSE", "mMAE", "mMRA", "PSNR@1"):
        backdoor.add_column(col)
    for s in summaries:
        if s.get("kind") == "backdoor":
            backdoor.add_row(s["spec"]["model"], s["attack"], _defended(s["victim"], s), s["trigger"], str(s["n"]),
                             *(format_metric(s.get(k)) for k in ("plcc", "srocc", "rmse", "mmae", "mmra", "psnr")))
        elif "abs_gain" in s:
            spec = s["spec"]
            evasion.add_row(_defended(spec["model"], s), f"{spec['dataset']}/{spec['split']}", s["attack"], str(s["n"]),
                            *(_number(s.get(k), ".4f") for k in ("abs_gain", "rel_gain", "robustness", "wasserstein",
                                                                  "energy")),
                            _number(s.get("psnr"), ".2f"), _number(s.get("score_rmse"), ".3f"))
    for table in (evasion, backdoor):
        if len(table.rows):
            _print_table(console, table)
    for s in summaries:
        if s.get("kind") != "backdoor" and "abs_gain" not in s:
            figures = ", ".join(f"{k}={_number(v, '.4g') if isinstance(v, float) else v}" for k, v in s.items()
                                if isinstance(v, (str, int, float)) and k != "kind")
            console.print(f"{s.get('kind', 'cell')}: {figures}", markup=False, highlight=False, soft_wrap=True)
