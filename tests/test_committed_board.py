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


@pytest.mark.skipif(not (BOARD / "data" / "plans.parquet").exists(), reason="no committed board plans")
def test_a_trust_store_rerun_of_the_committed_suite_on_its_committed_data_plans_only_the_older_backdoor_cells(
        invoke, tmp_path):
    """The README: the board's suite, rerun with ``--trust-store`` on a store
    imported from ``leaderboard/data``, resumes without training the finished
    cells' models again -- except the backdoor cells computed before the store
    recorded plans (README, "Resuming without the artifact cache"), which it
    plans again (training their victims).  So every other cell spec of the
    committed suite has a recorded plan whose cells are all finished, and
    every committed cell of those kinds belongs to such a plan."""
    pytest.importorskip("pyarrow")
    from iqabench.run.plan import with_baselines, wildcard_attacks
    from iqabench.run.resume import spec_key
    from iqabench.run.store import Store
    from iqabench.run.suite import expand, load_suite

    store_path = tmp_path / "store.sqlite"
    assert invoke(["import", str(BOARD / "data"), "--store", str(store_path)]).exit_code == 0
    store = Store(store_path)
    data, _ = load_suite(str(BOARD / "suite.toml"))
    specs = with_baselines(expand(data, "leaderboard/suite.toml", wildcard_attacks))  # as the runner plans them
    unplanned, planned_keys = [], set()
    for spec in specs:
        finished = store.finished_plan(spec_key(spec))
        if finished is not None:
            planned_keys.update(key for key, _ in finished)
        elif not spec.attack.startswith("baiqa-"):
            unplanned.append(f"{spec.model}/{spec.attack} {spec.attack_params} {spec.defense} seed {spec.seed}")
    assert not unplanned, f"{len(unplanned)} of {len(specs)} specs would be planned again: {unplanned[:5]}"
    stored = {k for (k,) in store.db.execute("SELECT key FROM cells WHERE kind != 'backdoor'")}
    assert stored <= planned_keys, f"{len(stored - planned_keys)} committed cells belong to no plan"
