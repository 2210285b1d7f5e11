"""Dataset files for workers without a shared filesystem (iqabench.data.shipping),
in one process: a worker that sees the driver's files uses them and fetches
nothing; one that sees other contents at that path (an older copy) builds the
dataset from the driver's files, with the driver's fingerprint."""
import numpy as np
import torch
from PIL import Image

from iqabench.data import shipping


def _images(folder, seed):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"im{i}.png")


def _pixels(dataset):
    return [dataset.load(item) for item in dataset.items("all")]


def test_a_worker_seeing_other_contents_uses_the_drivers_files_and_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(shipping, "_RELOCATED", {})
    monkeypatch.setattr(shipping, "_SEEN", {})
    params = {"root": str(tmp_path / "imgs")}
    _images(tmp_path / "imgs", seed=0)
    driver = shipping.build_dataset("folder", params)
    want, fingerprint = _pixels(driver), driver.fingerprint()
    manifest, files = shipping.pack("folder", params)
    fetched = []

    def fetch(m):
        fetched.append(m["dataset"])
        return files

    shipping.receive([manifest], fetch)  # the same contents at the same path: used as they are
    assert fetched == [] and shipping.build_dataset("folder", params).root == driver.root
    _images(tmp_path / "imgs", seed=1)  # now this "worker" holds other images at that path
    monkeypatch.setattr(shipping, "_SEEN", {})
    shipping.receive([manifest], fetch)
    worker = shipping.build_dataset("folder", params)
    assert fetched == ["folder"] and worker.root != driver.root
    assert worker.fingerprint() == fingerprint
    assert all(torch.equal(a, b) for a, b in zip(_pixels(worker), want, strict=True))


def test_a_relative_file_name_is_not_taken_for_a_path(tmp_path, monkeypatch):
    """``folder``'s ``csv`` is relative to its root: a file of that name in the
    working directory must not be shipped in its place."""
    _images(tmp_path / "imgs", seed=0)
    (tmp_path / "imgs" / "labels.csv").write_text("name,mos\nim0.png,1\n")
    (tmp_path / "labels.csv").write_text("unrelated\n")
    (tmp_path / "split.csv").write_text("name,split\n")
    monkeypatch.chdir(tmp_path)
    params = {"root": "imgs", "csv": "labels.csv", "split_file": str(tmp_path / "split.csv"), "missing": "skip"}
    assert shipping.path_params(params) == sorted(["imgs", str(tmp_path / "split.csv")])
