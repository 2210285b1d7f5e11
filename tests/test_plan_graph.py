"""The plan as a dependency graph: each cell's planning step waits for the
first earlier step that builds an artifact it needs (its dataset, its model
as built on it, its defended model's baseline, its attack's fitted
artifacts), so an executor that plans in parallel builds each artifact once;
the artifact cache records what a step wrote, to ship it to other workers."""
from iqabench.artifacts import atomic_write_bytes, cache_dir, cache_files, materialise, recording_writes
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
        [0],        # another seed: another model identity; dataset and attack from cell 0
    ]
    assert all(d < s.index for s in graph for d in s.deps)  # edges point back: no cycle
    assert depth(graph) == 3


def test_independent_cells_do_not_wait():
    graph = steps([_cell("fgsm")])
    assert graph[0].deps == [] and depth(graph) == 1


def test_the_cache_records_and_ships_what_a_step_wrote(tmp_path, monkeypatch):
    with recording_writes() as written:
        atomic_write_bytes(cache_dir("uaps") / "x.safetensors", b"uap")
        atomic_write_bytes(tmp_path / "elsewhere.bin", b"not an artifact")
    files = cache_files(written)
    assert files == {"uaps/x.safetensors": b"uap"}  # only the cache's files, by their path in it
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "other-node"))
    materialise(files)
    assert (tmp_path / "other-node" / "uaps" / "x.safetensors").read_bytes() == b"uap"
