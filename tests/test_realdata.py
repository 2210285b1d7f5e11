"""The real IQA databases: layouts, missing files, splits, split files.

LIVEC is tested on the shared 120-image sample (skipped where it is absent);
the other databases on tiny synthetic copies of their official layouts.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import iqabench
from iqabench.errors import DatasetError

SHARED = Path(__file__).resolve().parents[2] / "shared"
LIVEC_SAMPLE = SHARED / "data" / "livec-sample"
LIVEC_SPLIT = SHARED / "data" / "baiqa" / "livec_split.csv"
needs_livec = pytest.mark.skipif(not LIVEC_SAMPLE.is_dir(), reason="../shared/data/livec-sample is not available")


def _png(path: Path, size=(40, 32), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


# ------------------------------------------------------------------ LIVEC ---
@needs_livec
def test_livec_sample_excludes_training_images_and_uses_its_meta_info():
    ds = iqabench.get_dataset("livec", data_root=str(LIVEC_SAMPLE))
    items = ds.items("all")
    assert len(items) == 120
    assert not any(re.fullmatch(r"t[1-7]\.bmp", it.name) for it in items)
    assert {s: len(ds.items(s)) for s in ds.splits()} == {"train": 96, "test": 24}
    x = ds.load(items[0])
    assert x.shape[0] == 3 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert all(it.mos is not None and 0 < it.mos < 100 for it in items)


@needs_livec
def test_livec_split_file_is_honoured():
    import pandas as pd

    ds = iqabench.get_dataset("livec", data_root=str(LIVEC_SAMPLE), split_file=str(LIVEC_SPLIT))
    table = pd.read_csv(LIVEC_SPLIT).set_index("img_name")
    for split in ("train", "test"):
        for it in ds.items(split):
            assert table.loc[it.name, "split"] == split
            assert it.mos == pytest.approx(table.loc[it.name, "mos"], abs=1e-4)
    poison = ds.column("in_poison_subset")
    assert sum(poison.values()) == int(table.loc[list(poison), "in_poison_subset"].sum()) > 0
    assert ds.split_source.startswith("split file")


@needs_livec
def test_livec_missing_root_and_incomplete_copy(tmp_path):
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "nowhere"))):
        iqabench.get_dataset("livec", data_root=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match=r"data_root=DIR"):
        iqabench.get_dataset("livec")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "empty" / "Data" / "AllImages_release.mat"))):
        iqabench.get_dataset("livec", data_root=str(tmp_path / "empty"))
    # the official files without the sample's meta_info.csv: an incomplete copy
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "Data").symlink_to(LIVEC_SAMPLE / "Data")
    (copy / "Images").symlink_to(LIVEC_SAMPLE / "Images")
    with pytest.raises(DatasetError, match=r"1042 of 1162 listed images are missing from .*Images"):
        iqabench.get_dataset("livec", data_root=str(copy))
    ds = iqabench.get_dataset("livec", data_root=str(copy), missing="skip", seed=1)
    assert len(ds.items("all")) == 120 and ds.split_source.startswith("seeded")


# ------------------------------------------------------ other databases ---
def test_koniq10k_official_split(tmp_path):
    rows = ["image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore,set"]
    for i, s in enumerate(["training"] * 7 + ["validation", "test", "test"]):
        rows.append(f"{i}.jpg,0,0,0,0,0,0,3.0,0.5,{50 + i},{s}")
        _png(tmp_path / "1024x768" / f"{i}.jpg", seed=i)
    (tmp_path / "koniq10k_distributions_sets.csv").write_text("\n".join(rows) + "\n")
    ds = iqabench.get_dataset("koniq10k", data_root=str(tmp_path))
    assert {s: len(ds.items(s)) for s in ds.splits()} == {"train": 7, "val": 1, "test": 2}
    assert ds.items("test")[0].mos == 58.0
    (tmp_path / "1024x768" / "9.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 of 10 listed images are missing from .*1024x768 \(9\.jpg\)"):
        iqabench.get_dataset("koniq10k", data_root=str(tmp_path))
    with pytest.raises(DatasetError, match=r"image folder not found: looked for .*512x384"):
        iqabench.get_dataset("koniq10k", data_root=str(tmp_path), resolution="512x384")


def test_kadid10k_split_is_content_disjoint(tmp_path):
    rows = ["dist_img,ref_img,dmos,var"]
    for r in range(1, 6):
        for d in range(1, 4):
            name = f"I{r:02d}_{d:02d}_01.png"
            rows.append(f"{name},I{r:02d}.png,{1 + d},0.1")
            _png(tmp_path / "images" / name, seed=r * 10 + d)
    (tmp_path / "dmos.csv").write_text("\n".join(rows) + "\n")
    ds = iqabench.get_dataset("kadid10k", data_root=str(tmp_path), test_ratio=0.4)
    train_refs = {it.ref for it in ds.items("train")}
    test_refs = {it.ref for it in ds.items("test")}
    assert train_refs and test_refs and not train_refs & test_refs
    assert len(test_refs) == 2
    assert {(it.ref, it.group) for it in ds.items("all")} == {(f"I{r:02d}", f"{d:02d}") for r in range(1, 6)
                                                             for d in range(1, 4)}
    with pytest.raises(DatasetError, match=r"label file not found: looked for .*dmos\.csv"):
        iqabench.get_dataset("kadid10k", data_root=str(tmp_path / "images"))


def test_tid2013_case_insensitive_names(tmp_path):
    lines = []
    for r in (1, 2, 25):
        for d in (1, 2):
            name = f"i{r:02d}_{d:02d}_1.bmp"
            lines.append(f"{4.5 + d:.5f} {name}")
            _png(tmp_path / "distorted_images" / (name.upper() if r == 25 else name), seed=r + d)
    (tmp_path / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    ds = iqabench.get_dataset("tid2013", data_root=str(tmp_path), test_ratio=0.34)
    assert len(ds.items("all")) == 6 and {it.ref for it in ds.items("all")} == {"i01", "i02", "i25"}
    assert {it.group for it in ds.items("all")} == {"01", "02"}  # the distortion type
    assert all(ds.load(it).shape[0] == 3 for it in ds.items("all"))


def test_spaq_csv_and_resize(tmp_path):
    (tmp_path / "Annotations").mkdir()
    rows = ["Image name,MOS,Brightness"]
    for i in range(5):
        rows.append(f"{i:05d}.jpg,{40 + i},50")
        _png(tmp_path / "TestImage" / f"{i:05d}.jpg", size=(120, 90), seed=i)
    (tmp_path / "Annotations" / "MOS and Image attribute scores.csv").write_text("\n".join(rows) + "\n")
    ds = iqabench.get_dataset("spaq", data_root=str(tmp_path), resize_short=45)
    assert tuple(ds.load(ds.items("all")[0]).shape) == (3, 45, 60)
    assert ds.fingerprint() != iqabench.get_dataset("spaq", data_root=str(tmp_path), resize_short=0).fingerprint()
    (tmp_path / "Annotations" / "MOS and Image attribute scores.csv").unlink()
    (tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx").write_bytes(b"PK")
    with pytest.raises(DatasetError, match="openpyxl|cannot read"):
        iqabench.get_dataset("spaq", data_root=str(tmp_path))


def test_nips2017_has_no_mos(tmp_path):
    for i in range(3):
        _png(tmp_path / "images" / f"{i:04x}.png", seed=i)
    ds = iqabench.get_dataset("nips2017", data_root=str(tmp_path))
    assert ds.splits() == ["test"] and len(ds.items("test")) == 3
    assert all(it.mos is None for it in ds.items("test"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images in .*empty"):
        iqabench.get_dataset("nips2017", data_root=str(tmp_path / "empty"))


def test_a_corrupt_image_is_named_on_load(tmp_path):
    for i in range(3):
        _png(tmp_path / "images" / f"{i}.png", seed=i)
    (tmp_path / "images" / "1.png").write_bytes(b"garbage")
    ds = iqabench.get_dataset("nips2017", data_root=str(tmp_path))
    with pytest.raises(DatasetError, match=r"1\.png: cannot decode image"):
        ds.load(ds.items("test")[1])


# --------------------------------------------------------------- folder ---
def test_folder_pyiqa_meta_info_columns_and_split_file(tmp_path):
    for i in range(6):
        _png(tmp_path / "imgs" / "sub" / f"{i}.png", seed=i)
    (tmp_path / "meta.csv").write_text(
        "ref_name,dist_name,mos,split_a,split_b\n"
        + "".join(f"r.png,sub/{i}.png,{10 * i},{'train' if i < 4 else 'test'},{'test' if i < 2 else 'train'}\n"
                  for i in range(6)))
    ds = iqabench.get_dataset("folder", data_root=str(tmp_path / "imgs"), csv=str(tmp_path / "meta.csv"),
                              name_column="dist_name", mos_column="mos", split_column="split_b")
    assert len(ds.items("test")) == 2 and ds.items("test")[0].name == "sub/0.png"
    assert ds.items("train")[-1].mos == 50.0
    (tmp_path / "split.csv").write_text("name,split\n" + "".join(f"sub/{i}.png,{'test' if i == 5 else 'train'}\n" for i in range(6)))
    ds2 = iqabench.get_dataset("folder", root=str(tmp_path / "imgs"), csv=str(tmp_path / "meta.csv"),
                               name_column="dist_name", mos_column="mos", split_file=str(tmp_path / "split.csv"))
    assert [it.name for it in ds2.items("test")] == ["sub/5.png"]
    assert ds.fingerprint() != ds2.fingerprint()
    (tmp_path / "imgs" / "sub" / "3.png").unlink()
    with pytest.raises(DatasetError, match=r"1 of 6 images listed in .* are missing from .*imgs \(sub/3\.png\)"):
        iqabench.get_dataset("folder", root=str(tmp_path / "imgs"), csv=str(tmp_path / "meta.csv"),
                             name_column="dist_name", mos_column="mos")


@needs_livec
@pytest.mark.slow
def test_train_hyperiqa_quick_on_the_livec_sample(invoke, tmp_path):
    """``iqabench train --model hyperiqa --dataset livec ... --profile quick``
    trains (CPU, a few minutes) and reports correlations on the test split."""
    out = tmp_path / "hyperiqa-livec.safetensors"
    result = invoke(["train", "--model", "hyperiqa", "--dataset", "livec", "--dataset-param",
                     f"data_root={LIVEC_SAMPLE}", "--profile", "quick", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert re.search(r"SROCC -?\d\.\d+\s+PLCC -?\d\.\d+\s+RMSE \d", result.output), result.output
    card = json.loads(out.with_suffix(".card.json").read_text())
    assert card["model"] == "hyperiqa" and card["dataset"] == "livec"
    model = iqabench.get_model("hyperiqa", weights=str(out))  # the trained weights load back
    assert model.score_range is not None
