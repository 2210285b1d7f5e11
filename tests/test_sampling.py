"""Limited runs see a representative, seeded subset (``iqabench.sampling.subset``).

The truth is independent of the sampler: the strata are parsed from the
embedded images' names, and the proportional shares are exact fractions
computed here.
"""
from __future__ import annotations

import itertools
import random
from collections import Counter
from fractions import Fraction
from math import ceil, floor

import pytest

from iqabench.contracts import Item
from iqabench.data.sampling import SCHEME, sampling_key, subset, subset_indices

DEFAULT_SUITE_LIMIT = 48


def _photo_and_type(name: str) -> tuple[str, str]:
    """``chelsea_c3_jpeg_2`` -> ("chelsea", "jpeg"); ``chelsea_c3_pristine`` -> ("chelsea", "pristine")."""
    photo, _crop, rest = name.split("_", 2)
    return photo, rest.rsplit("_", 1)[0] if rest != "pristine" else rest


def _within_one_of_share(chosen: list, universe: list, key, limit: int) -> None:
    """Every stratum's count is the floor or the ceiling of its proportional share."""
    have, total = Counter(map(key, chosen)), Counter(map(key, universe))
    for stratum, size in total.items():
        share = Fraction(limit * size, len(universe))
        assert floor(share) <= have[stratum] <= ceil(share), (stratum, have[stratum], float(share))


@pytest.fixture(scope="module")
def embedded_test_items():
    import iqabench

    return list(iqabench.get_dataset("embedded").items("test"))


def test_the_default_limit_covers_every_distortion_and_photograph_in_proportion(embedded_test_items):
    items = embedded_test_items
    chosen = subset(items, DEFAULT_SUITE_LIMIT, seed=0)
    assert len(chosen) == DEFAULT_SUITE_LIMIT == len({it.name for it in chosen})
    photo = lambda it: _photo_and_type(it.name)[0]  # noqa: E731
    kind = lambda it: _photo_and_type(it.name)[1]  # noqa: E731
    assert {kind(it) for it in chosen} == {kind(it) for it in items}  # pristine and all 5 types
    assert {photo(it) for it in chosen} == {photo(it) for it in items}
    _within_one_of_share(chosen, items, kind, DEFAULT_SUITE_LIMIT)
    _within_one_of_share(chosen, items, photo, DEFAULT_SUITE_LIMIT)
    _within_one_of_share(chosen, items, lambda it: (photo(it), kind(it)), DEFAULT_SUITE_LIMIT)
    assert [it.name for it in chosen] == [it.name for it in items if it in chosen]  # the split's order


@pytest.mark.parametrize("limit", [8, 24, 100])
def test_every_limit_is_in_proportion(embedded_test_items, limit):
    chosen = subset(embedded_test_items, limit, seed=3)
    assert len(chosen) == limit
    for part in (0, 1):
        _within_one_of_share(chosen, embedded_test_items, lambda it: _photo_and_type(it.name)[part], limit)


def test_same_seed_same_subset_other_seed_other_subset(embedded_test_items):
    items = embedded_test_items
    names = lambda s: [it.name for it in subset(items, DEFAULT_SUITE_LIMIT, seed=s)]  # noqa: E731
    assert names(0) == names(0)
    assert len({tuple(names(s)) for s in range(5)}) == 5
    # the subset depends on the items, not on the order the dataset lists them in
    shuffled = random.Random(1).sample(items, len(items))
    assert sorted(it.name for it in subset(shuffled, DEFAULT_SUITE_LIMIT, seed=0)) == sorted(names(0))


def test_no_strata_is_a_seeded_uniform_random_draw():
    # every image its own content (as datasets without references declare them) and no groups
    items = [Item(f"img{i:03d}", 50.0, i, ref=f"img{i:03d}") for i in range(60)]
    draws = [subset_indices(items, 10, seed) for seed in range(600)]
    assert all(len(d) == 10 == len(set(d)) and d == sorted(d) for d in draws)
    assert draws[0] == subset_indices(items, 10, 0) and draws[0] != draws[1]
    assert draws[0] != [i * 6 for i in range(10)]  # not the evenly spaced items
    # each image is drawn with probability 1/6: 100 times in 600 draws, binomial sd ~9.1
    hits = Counter(i for d in draws for i in d)
    assert set(hits) == set(range(60))
    assert all(55 <= h <= 145 for h in hits.values()), sorted(hits.values())
    # and the draws are not all alike: pairwise overlap near the expected 10 * 10 / 60
    overlap = [len(set(a) & set(b)) for a, b in zip(draws, draws[1:])]
    assert 1.0 < sum(overlap) / len(overlap) < 2.4


@pytest.mark.parametrize("seed", range(30))
def test_controlled_rounding_on_random_tables(seed):
    rng = random.Random(seed)
    refs = [f"r{i}" for i in range(rng.randint(1, 7))]
    groups = [f"g{j}" for j in range(rng.randint(1, 6))]
    items = []
    for r, g in itertools.product(refs, groups):
        items += [Item(f"{r}-{g}-{k}", 1.0, None, ref=r, group=g) for k in range(rng.randint(0, 9))]
    if len(items) < 2:
        return
    limit = rng.randint(1, len(items) - 1)
    chosen = subset(items, limit, seed=seed)
    assert len(chosen) == limit == len(set(chosen))
    for key in (lambda it: it.ref, lambda it: it.group, lambda it: (it.ref, it.group)):
        labels = {key(it) for it in items}
        if 1 < len(labels) < len(items):  # a dimension that groups anything is honoured
            _within_one_of_share(chosen, items, key, limit)


def test_whole_split_and_bad_limit():
    items = [Item(f"i{k}", 1.0, k, ref="a" if k < 3 else "b") for k in range(7)]
    assert subset(items, 0) == items and subset(items, 7) == items and subset(items, 99) == items
    assert sampling_key(0, 7) == sampling_key(7, 7) == sampling_key(9, 7) == {}
    assert sampling_key(5, 7) == {"sampling": SCHEME}
    from iqabench.errors import ParameterError

    with pytest.raises(ParameterError, match="limit"):
        subset(items, -1)


def test_embedded_items_name_their_distortion_type(embedded_test_items):
    for it in embedded_test_items:
        photo, kind = _photo_and_type(it.name)
        assert (it.ref, it.group) == (photo, kind)


def test_a_limited_run_attacks_the_stratified_subset(tmp_path):
    """The runner's ``limit`` goes through the sampler: ``--limit 48`` on the
    embedded test split attacks every distortion type, not 24 pristine and
    24 ``jpeg_3`` images."""
    import sqlite3

    from iqabench.run.runner import Runner, open_run
    from iqabench.contracts import CellSpec

    spec = CellSpec(model="cnniqa", dataset="embedded", attack="fgsm", limit=DEFAULT_SUITE_LIMIT, batch_size=16)
    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    runner.run([spec])
    db = sqlite3.connect(tmp_path / "s.sqlite")
    names = [n for (n,) in db.execute("SELECT name FROM images")]
    configs = [c for (c,) in db.execute("SELECT config FROM cells")]
    db.close()
    kinds = Counter(_photo_and_type(n)[1] for n in names)
    assert len(names) == DEFAULT_SUITE_LIMIT
    assert set(kinds) == {"pristine", "blur", "noise", "jpeg", "contrast", "quantise"}, kinds
    assert all(f'"sampling": "{SCHEME}"' in c or f'"sampling":"{SCHEME}"' in c for c in configs)


def test_a_clean_range_is_measured_on_every_stratum():
    """A model without a card measures its range on a stratified reference
    set: with two interleaved groups of images (dark, bright), evenly spaced
    picks would see only the dark ones."""
    import torch

    from iqabench.contracts import IQADataset
    from iqabench.models.score_range import RANGE_REFERENCE_IMAGES, ensure_score_range
    from models_for_tests import MeanLuma

    n = 2 * RANGE_REFERENCE_IMAGES

    class Interleaved(IQADataset):
        name = "test-interleaved"

        def splits(self):
            return ["test"]

        def items(self, split):
            return [Item(f"i{i}", None, i, ref=f"scene{i // 2}", group="bright" if i % 2 else "dark") for i in range(n)]

        def load(self, item):
            level = (0.7 if item.source % 2 else 0.1) + 0.2 * item.source / n
            return torch.full((3, 8, 8), level)

        def fingerprint(self):
            return "test-interleaved-v1"

    model = MeanLuma()
    model.score_range = None
    model.weights = "none"
    low, high = ensure_score_range(model, Interleaved(), "cpu")
    assert low < 30 and high > 70
    assert model.range_sampling == {"range_sampling": SCHEME}  # part of the model's identity in cell keys


def test_a_model_reused_on_another_dataset_measures_that_datasets_range(tmp_path, monkeypatch):
    """A run (or a Ray worker) keeps one model object for all its cells: the
    range it measured on one dataset must not normalise another's cells (the
    range a cell gets would depend on which cells ran before it)."""
    from iqabench.models.score_range import ensure_score_range
    from models_for_tests import TinyConvIQA, TinyData

    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path))

    def model():
        import torch

        torch.manual_seed(0)
        m = TinyConvIQA()
        m.weights = "random-init (seed 0)"
        return m

    a, b = TinyData.make(seed=0)(), TinyData.make(seed=1, n_test=4)()
    reused = model()
    on_a = ensure_score_range(reused, a, "cpu")
    on_b = ensure_score_range(reused, b, "cpu")
    alone = model()
    assert on_b == ensure_score_range(alone, b, "cpu") != on_a
    assert reused.range_sampling == alone.range_sampling
    assert ensure_score_range(reused, b, "cpu") == on_b
