"""The committed board is what its committed data renders to: importing
``leaderboard/data`` (the store's tables, exported as open data) into an
empty store and rendering it gives every table, page and card of
``leaderboard/`` byte for byte (and the same figures) -- so no number on
the published board was edited by hand or rendered from rows the repository
does not hold."""
from __future__ import annotations

from pathlib import Path

import pytest

BOARD = Path(__file__).resolve().parents[1] / "leaderboard"


@pytest.mark.skipif(not (BOARD / "data" / "cells.parquet").exists(), reason="no committed board data")
def test_the_committed_board_is_the_render_of_its_committed_data(invoke, tmp_path):
    pytest.importorskip("pyarrow")
    store = tmp_path / "store.sqlite"
    result = invoke(["import", str(BOARD / "data"), "--store", str(store)])
    assert result.exit_code == 0, result.output
    result = invoke(["report", "--store", str(store), "--out", str(tmp_path / "board")])
    assert result.exit_code == 0, result.output
    written = (tmp_path / "board" / "board-files.txt").read_text().split()
    assert written == (BOARD / "board-files.txt").read_text().split()
    # every table, page and card byte for byte; figures exist (their bytes depend on
    # the matplotlib release, the numbers they draw are the CSVs')
    differ = [f for f in written if not f.endswith(".svg")
              and (tmp_path / "board" / f).read_bytes() != (BOARD / f).read_bytes()]
    assert not differ, differ
