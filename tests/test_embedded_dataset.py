"""The embedded default dataset: deterministic, content-disjoint, sane labels.

Small configurations (few photographs, small crops) keep each test fast;
generation is per photograph, so they exercise exactly the code that builds
the full dataset.
"""
from __future__ import annotations

import numpy as np
import pytest

from iqabench.errors import DatasetError
from iqabench_plugins.datasets import embedded as E

SMALL = E.EmbeddedConfig(crop_size=64, crops_per_ref=2, photos=("astronaut", "coffee", "chelsea"))


def _kind(name: str) -> tuple[str, int]:
    """``astronaut_c1_jpeg_3`` -> ("jpeg", 3); the pristine crop is level 0."""
    _, _, tail = name.split("_", 2)
    if tail == E.PRISTINE:
        return E.PRISTINE, 0
    kind, level = tail.rsplit("_", 1)
    return kind, int(level)


@pytest.fixture(scope="module")
def small() -> E.EmbeddedData:
    return E.generate(SMALL)


def test_generation_is_deterministic(small):
    again = E.generate(SMALL)
    for field in ("images", "mos", "names", "refs", "splits"):
        np.testing.assert_array_equal(getattr(small, field), getattr(again, field))
    assert E.fingerprint(SMALL) == E.fingerprint(E.EmbeddedConfig(**SMALL.__dict__))
    assert E.fingerprint(SMALL) != E.fingerprint(E.EmbeddedConfig(crop_size=96, crops_per_ref=2, photos=SMALL.photos))


def test_distortion_grid(small):
    assert len(E.DISTORTIONS) >= 5
    assert all(len(d.levels) >= 4 for d in E.DISTORTIONS)
    per_crop = 1 + sum(len(d.levels) for d in E.DISTORTIONS)
    assert len(small.names) == len(SMALL.photos) * SMALL.crops_per_ref * per_crop
    assert len(set(small.names.tolist())) == len(small.names)
    kinds = {_kind(n) for n in small.names}
    for d in E.DISTORTIONS:
        assert {(d.name, lv) for lv in range(1, len(d.levels) + 1)} <= kinds


def test_labels_in_range_and_monotone_in_level(small):
    mos = small.mos.astype(np.float64)
    assert np.all((mos >= 0) & (mos <= 100))
    kinds = [_kind(n) for n in small.names]
    pristine = np.array([k == E.PRISTINE for k, _ in kinds])
    np.testing.assert_allclose(mos[pristine], 100.0)
    for d in E.DISTORTIONS:
        means = [100.0] + [
            mos[[k == (d.name, lv) for k in kinds]].mean() for lv in range(1, len(d.levels) + 1)
        ]
        # independent truth: stronger distortion -> lower quality, on average
        assert all(a > b for a, b in zip(means, means[1:])), (d.name, means)


def test_pseudo_mos_of_identical_images_is_100():
    rng = np.random.default_rng(0)
    ref = rng.random((40, 40, 3))
    assert E.pseudo_mos(ref[None].repeat(2, 0), ref) == pytest.approx([100.0, 100.0])


def test_splits_are_disjoint_by_content(small):
    train = set(small.refs[small.splits == E.TRAIN].tolist())
    test = set(small.refs[small.splits == E.TEST].tolist())
    assert train and test and not train & test
    # every photograph has one fixed split; the default test split has >= 3 contents
    assert {p.split for p in E.PHOTOS} == {E.TRAIN, E.TEST}
    assert len([p for p in E.PHOTOS if p.split == E.TEST and p.locate() is not None]) >= 3


def test_dataset_items_and_images(monkeypatch, tmp_path):
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(E, "PHOTOS", tuple(p for p in E.PHOTOS if p.id in SMALL.photos))
    ds = E.EmbeddedDataset(crop_size=64, crops_per_ref=1)
    train, test = ds.items("train"), ds.items("test")
    assert {it.ref for it in train}.isdisjoint({it.ref for it in test})
    assert train[0].name == "astronaut_c1_pristine" and train[0].ref == "astronaut"
    for item in (train[0], train[-1], test[3]):
        x = ds.load(item)
        assert x.dtype.is_floating_point and x.shape == (3, 64, 64)
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    # the second instance reads the cache written by the first
    cached = list(tmp_path.rglob("*.npz"))
    assert len(cached) == 1 and cached[0].stem in ds.fingerprint()
    again = E.EmbeddedDataset(crop_size=64, crops_per_ref=1)
    assert [it.name for it in again.items("test")] == [it.name for it in test]
    with pytest.raises(DatasetError, match="no split"):
        ds.items("validation")


def test_missing_package_is_skipped_or_named(monkeypatch):
    real = E.Photo.locate
    monkeypatch.setattr(E.Photo, "locate", lambda self: None if self.distribution == "matplotlib" else real(self))
    found = E.available_photos(E.EmbeddedConfig())
    assert found and all(p.distribution != "matplotlib" for p, _ in found)
    monkeypatch.setattr(E.Photo, "locate", lambda self: None)
    with pytest.raises(DatasetError, match="only 0 train photograph.*missing: astronaut"):
        E.available_photos(E.EmbeddedConfig())
