"""Per-image galleries: an evasion cell keeps thumbnails of exactly its k
images with the largest gain (clean, attacked, amplified difference) beside
the store, a bounded number, with their scores, PSNR and SSIM; the report
embeds them in the cell's page."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from PIL import Image

from board_fixtures import small_store  # noqa: F401  (a fixture)
from models_for_tests import TinyData


def test_each_cell_keeps_exactly_its_k_largest_gains_as_thumbnails(small_store):
    from iqabench.contracts import RunContext
    from iqabench.contracts.context import gallery_dir

    k = RunContext().gallery
    db = sqlite3.connect(small_store)
    data = TinyData.make(n_train=4, n_test=5)()
    items = {it.name: it for it in data.items("test")}
    cells = db.execute("SELECT key, summary FROM cells WHERE status = 'done'").fetchall()
    assert cells
    for key, summary in cells:
        lower_better = json.loads(summary)["lower_better"]
        rows = db.execute("SELECT name, idx, clean, attacked, psnr, ssim FROM images WHERE cell_key = ?", (key,)).fetchall()
        sign = -1 if lower_better else 1
        ranked = sorted(rows, key=lambda r: -sign * (r[3] - r[2]))[:k]
        folder = gallery_dir(small_store, key)
        entries = json.loads((folder / "gallery.json").read_text())
        assert [e["name"] for e in entries] == [r[0] for r in ranked]  # the k largest gains, largest first
        assert len(list(folder.iterdir())) == 4 * k + 1  # bounded: 3 thumbnails + 1 note per image, the index
        for entry, (name, idx, clean, attacked, psnr, ssim) in zip(entries, ranked):
            assert (entry["clean"], entry["attacked"], entry["psnr"], entry["ssim"]) == (clean, attacked, psnr, ssim)
            assert entry["gain"] == pytest.approx(sign * (attacked - clean))
            thumb = np.asarray(Image.open(folder / entry["files"]["clean"]), dtype=float) / 255
            truth = data.load(items[name]).permute(1, 2, 0).numpy()
            err = np.abs(thumb - truth).mean()
            assert thumb.shape == truth.shape and err < 0.03, err  # the image itself, through JPEG
            diff = np.asarray(Image.open(folder / entry["files"]["diff"]), dtype=float)
            assert np.abs(diff - 128).max() > 80  # amplified to (nearly) the full grey range


def test_the_cell_page_embeds_its_gallery(small_store, invoke, tmp_path):
    from iqabench.contracts.context import gallery_dir

    result = invoke(["report", "--store", str(small_store), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    key = sqlite3.connect(small_store).execute("SELECT key FROM cells WHERE attack = 'fgsm'").fetchone()[0]
    page = (tmp_path / "site" / "cells" / f"{key}.html").read_text()
    assert "Images with the largest gain" in page
    for name in ("clean", "attacked", "diff"):
        shown = sorted((tmp_path / "site" / "cells" / key).glob(f"*-{name}.jpg"))
        assert shown and all(f'src="{key}/{p.name}"' in page for p in shown)
    # the galleries page: every cell's largest gain, linked to its cell
    galleries = (tmp_path / "site" / "galleries.html").read_text()
    for (k,) in sqlite3.connect(small_store).execute("SELECT key FROM cells"):
        top = json.loads((gallery_dir(small_store, k) / "gallery.json").read_text())[0]
        assert f'href="cells/{k}.html"' in galleries and f'src="cells/{k}/{top["files"]["diff"]}"' in galleries


@pytest.mark.parametrize("k", [0, 1])
def test_run_gallery_sets_how_many_thumbnails_a_cell_keeps(invoke, plugin, tmp_path, k):
    from models_for_tests import Registers, TinyConvIQA

    plugin(Registers([TinyConvIQA], [TinyData.make(n_train=4, n_test=5)]), "gallery-k")
    store = tmp_path / "s.sqlite"
    result = invoke(["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "-a", "fgsm", "--batch-size", "2",
                     "--gallery", str(k), "--store", str(store), "--no-leaderboard", "-q"])
    assert result.exit_code == 0, result.output
    if k == 0:
        assert not (tmp_path / "images").exists()
        return
    (key,) = [k for (k,) in sqlite3.connect(store).execute("SELECT key FROM cells")]
    rows = sqlite3.connect(store).execute("SELECT name, attacked - clean FROM images").fetchall()
    entries = json.loads((tmp_path / "images" / key / "gallery.json").read_text())
    assert [e["name"] for e in entries] == [max(rows, key=lambda r: r[1])[0]]  # three batches, one image kept
    assert len(list((tmp_path / "images" / key).iterdir())) == 5
