"""The plan as a dependency graph: each cell's planning step waits for the
first earlier step that builds an artifact it needs (its model as built on
its dataset, its defended model's baseline, its attack's fitted artifacts),
so an executor that plans in parallel builds each artifact once; a dataset
several cells share is built by a step of its own that builds nothing else;
the artifact cache records what a step wrote, to ship it to other workers."""
import pytest

from iqabench.artifacts import (atomic_write_bytes, cache_dir, cache_files, canonical_json, materialise,
                                recording_writes)
from iqabench.contracts import CellSpec
from iqabench.run.graph import depth, steps


def _cell(attack, defense="none", seed=0, model="cnniqa", **params):
    return CellSpec(model=model, dataset="embedded", attack=attack, seed=seed, attack_params=params,
                    defense=defense, defense_params={"rate": 0.5} if defense == "prune" else {})


def test_each_step_waits_for_the_builders_of_what_it_shares():
    cells = [_cell("fgsm"), _cell("ifgsm"), _cell("fgsm", "prune"), _cell("uap"), _cell("uap", "prune"),
             _cell("fgsm", seed=1)]
    graph = steps(cells)
    assert [s.deps for s in graph] == [
        [],         # builds the dataset, the model, fgsm's artifacts
        [0],        # the same dataset and model
        [0],        # the pruned model is built here; its baseline (cell 0's model) and fgsm come from cell 0
        [0],        # a UAP of its own, the model of cell 0
        [0, 2, 3],  # the pruned model (cell 2), the UAP attack's first cell (3)
        [],         # another seed: another model; FGSM fits nothing, the dataset has a step of its own
    ]
    assert all(d < s.index for s in graph for d in s.deps)  # edges point back: no cycle
    assert depth(graph) == 3


def test_cells_sharing_only_their_dataset_wait_for_its_dataset_step_alone():
    """A cell's plan may train for an hour (a model, a UAP, a backdoored victim): cells
    that share only the dataset wait for a step that builds the dataset, never for
    the first cell's whole plan; a shared model is still built by its first cell."""
    nt = CellSpec(model="cnniqa", dataset="embedded", attack="pgd", defense="nt", defense_params={"lam": 1e-6})
    cells = [_cell("fgsm"), _cell("ifgsm", model="dbcnn"), nt, _cell("uap")]  # nt: its lam=0 baseline's too
    graph = steps(cells)
    assert [s.deps for s in graph] == [[], [], [], [0]]  # the last shares cell 0's model
    (data,) = {id(d): d for s in graph for d in s.datasets}.values()  # one step for the one dataset
    assert (data.name, data.params) == ("embedded", {})
    assert all(s.datasets == [data] for s in graph)
    assert all(d < s.index for s in graph for d in s.deps)  # the nt cell's baseline names its attack again
    assert depth(graph) == 2  # cells' plans only: the dataset step is light


def test_a_defended_cell_before_its_baseline_waits_for_no_step_of_its_own():
    """Its baseline's identities repeat its dataset and attack (``defenses = ["prune", "none"]``)."""
    graph = steps([_cell("fgsm", "prune"), _cell("fgsm")])
    assert [s.deps for s in graph] == [[], [0]]


def test_steps_of_some_of_a_runs_cells_name_the_runs_indices():
    """A resumed run plans only its unfinished cells: their steps and dependencies carry
    the indices of the run's cells, and the graph is the same as for those cells alone."""
    cells = [_cell("fgsm", "prune"), _cell("fgsm")]
    alone = steps(cells)
    graph = steps(cells, [3, 7])
    assert [(s.index, s.deps) for s in graph] == [(3, []), (7, [3])]
    assert [s.spec for s in graph] == [s.spec for s in alone] and [s.deps for s in alone] == [[], [0]]
    with pytest.raises(ValueError, match="1 indices for 2 cells"):
        steps(cells, [3])


def test_a_step_gets_the_dataset_steps_of_the_steps_it_waits_for(monkeypatch):
    """What cell 1 loads from cell 0 may need cell 0's dataset: those files come
    from the dataset step now, not from cell 0's, so cell 1 gets them too."""
    import iqabench.run.graph as graph_module

    named = {"a": [["dataset", "x", {}], ["model", "m"]], "b": [["model", "m"]], "c": [["dataset", "x", {}]]}
    monkeypatch.setattr(graph_module, "shares", lambda spec: [canonical_json(i) for i in named[spec.model]])
    graph = steps([CellSpec(model=m, dataset="x", attack="fgsm") for m in "abc"])
    assert [s.deps for s in graph] == [[], [0], []]
    assert [[(d.name, d.params) for d in s.datasets] for s in graph] == [[("x", {})]] * 3


def test_a_dataset_only_one_cell_names_is_built_by_its_cell():
    graph = steps([_cell("fgsm"), CellSpec(model="cnniqa", dataset="folder", attack="uap",
                                             dataset_params={"root": "imgs"})])
    assert [(s.deps, s.datasets) for s in graph] == [([], []), ([], [])]


def test_independent_cells_do_not_wait():
    graph = steps([_cell("fgsm")])
    assert graph[0].deps == [] and depth(graph) == 1


def test_the_nt_sweep_trains_its_models_in_parallel():
    """FGSM and I-FGSM fit nothing while a cell is planned: a cell waits for the
    first cell of its own NT model (which trains it, about 15 minutes) and for
    its lam = 0 baseline's (whose model gives its clean range), never for a
    cell of another (lam, seed) -- the suite is loaded, not run."""
    from iqabench.run.plan import wildcard_attacks, with_baselines
    from iqabench.run.suite import expand, load_suite

    data, _ = load_suite("nt-sweep")
    graph = steps(with_baselines(expand(data, "nt-sweep", wildcard_attacks)))
    model = {s.index: (s.spec.defense_params["lam"], s.spec.seed) for s in graph}
    first: dict[tuple, int] = {}
    for s in graph:
        first.setdefault(model[s.index], s.index)
    assert len(first) == 15 and len(graph) == 30  # 4 lam x 3 seeds, 3 baselines; x {fgsm, ifgsm}
    for s in graph:
        lam, seed = model[s.index]
        assert s.deps == sorted({first[(lam, seed)], first[(0.0, seed)]} - {s.index}), (s.label, s.spec.seed)
    assert depth(graph) == 3  # the baselines, the NT models (all 12 at once), the cells that load them


def test_a_uap_cell_waits_for_the_first_cell_fitting_the_same_perturbation():
    """... and not for a cell fitting another one (on another model, whose plan may train it)."""
    jpeg = CellSpec(model="cnniqa", dataset="embedded", attack="uap", defense="jpeg")  # fitted on the bare model
    transfer = CellSpec(model="dbcnn", dataset="embedded", attack="uap", seed=1, transfer_from={"model": "cnniqa"})
    cells = [_cell("fgsm"), _cell("uap"), _cell("uap", seed=1), jpeg, transfer, _cell("uap", seed=1, size=64)]
    assert [s.deps for s in steps(cells)] == [
        [],      # builds the model
        [0],     # fits the UAP on cell 0's model
        [],      # another seed: another model, another UAP
        [0, 1],  # its baseline's model (cell 0) and the UAP cell 1 fits on it: non-adaptive, the bare model's
        [2],     # crafted on cnniqa with seed 1: cell 2 builds that model and fits its UAP
        [2],     # another UAP (other parameters) on cell 2's model
    ]


def test_a_transfer_cell_waits_for_the_step_that_builds_its_source_model():
    cells = [_cell("fgsm", model="dbcnn"), _cell("ifgsm"),
             CellSpec(model="dbcnn", dataset="embedded", attack="fgsm", transfer_from={"model": "cnniqa"})]
    assert [s.deps for s in steps(cells)] == [[], [], [0, 1]]  # dbcnn (cell 0), the source cnniqa (cell 1)
    first = CellSpec(model="dbcnn", dataset="embedded", attack="fgsm", transfer_from={"model": "cnniqa"})
    assert [s.deps for s in steps([first, _cell("ifgsm")])] == [[], [0]]  # it builds the source model first


def test_amifgsm_cells_wait_for_the_first_that_fits_niqe():
    """Its plan fits NIQE's pristine model once, whatever its parameters; ``eps_mode="fixed"`` needs none."""
    cells = [_cell("amifgsm"), _cell("amifgsm", seed=1), _cell("amifgsm", seed=2, eps_mode="fixed"),
             _cell("amifgsm", seed=3, iters=5)]
    assert [s.deps for s in steps(cells)] == [[], [0], [], [0]]


def test_the_cache_records_and_ships_what_a_step_wrote(tmp_path, monkeypatch):
    with recording_writes() as written:
        atomic_write_bytes(cache_dir("uaps") / "x.safetensors", b"uap")
        atomic_write_bytes(tmp_path / "elsewhere.bin", b"not an artifact")
    files = cache_files(written)
    assert files == {"uaps/x.safetensors": b"uap"}  # only the cache's files, by their path in it
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "other-node"))
    materialise(files)
    assert (tmp_path / "other-node" / "uaps" / "x.safetensors").read_bytes() == b"uap"
