"""Every kind of bad input gives one line naming the culprit and a non-zero
exit (or a documented conversion), and finished results are kept."""
import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image

from iqabench import hookimpl
from iqabench.data.imageio import read_rgb
from models_for_tests import MeanLuma, NaNModel


class MeanLumaPlugin:
    @hookimpl
    def register_models(self, register):
        register(MeanLuma)


def _run(invoke, tmp_path, *args):
    return invoke(["run", "--store", str(tmp_path / "s.sqlite"), "--no-leaderboard", "-q", *args])


def _one_line_error(result, *fragments):
    assert result.exit_code != 0
    lines = [l for l in result.output.strip().splitlines() if l.startswith("Error:")]
    assert len(lines) == 1, result.output
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("flag,name,kind", [("--model", "nope", "model"), ("--attack", "ifgsn", "attack"), ("--dataset", "embeded", "dataset")])
def test_unknown_names(invoke, tmp_path, flag, name, kind):
    _one_line_error(_run(invoke, tmp_path, flag, name), f"unknown {kind} '{name}'")


def test_unknown_and_mistyped_attack_parameters(invoke, tmp_path):
    _one_line_error(_run(invoke, tmp_path, "--attack", "ifgsm", "--param", "iter=3"), "no parameter 'iter'", "did you mean 'iters'")
    _one_line_error(_run(invoke, tmp_path, "--attack", "ifgsm", "--param", "iters=many"), "parameter 'iters'", "expected int")


def test_suite_typo(invoke, tmp_path):
    suite = tmp_path / "grid.toml"
    suite.write_text('models = ["cnniqa"]\ndatasets = ["embedded"]\nattacks = ["fgsm"]\nsedes = [1]\n')
    _one_line_error(invoke(["run", "--suite", str(suite), "--store", str(tmp_path / "s.sqlite")]), "grid.toml", "'sedes'", "'seeds'")


def _folder(tmp_path, images: dict) -> str:
    root = tmp_path / "imgs"
    root.mkdir()
    for name, writer in images.items():
        writer(root / name)
    return str(root)


def _good(size=64):
    def write(path):
        rng = np.random.default_rng(len(path.name))
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return write


def test_corrupt_image_is_named_and_earlier_batches_are_kept(invoke, tmp_path, plugin):
    def corrupt(path):
        path.write_bytes(b"not an image at all")

    plugin(MeanLumaPlugin(), "mean-luma-plugin")  # a fixed score range: nothing is measured up front
    root = _folder(tmp_path, {"a.png": _good(), "b.png": _good(), "z_bad.png": corrupt})
    result = _run(invoke, tmp_path, "--model", "test-mean-luma", "--dataset", "folder", "--dataset-param", f"root={root}",
                  "--dataset-param", "test_ratio=1.0", "--attack", "fgsm", "--batch-size", "2")
    _one_line_error(result, "z_bad.png", "cannot decode image")
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("SELECT count(*) FROM images").fetchone()[0] == 2  # the finished batch survived


def test_truncated_image(tmp_path):
    path = tmp_path / "t.jpg"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(Exception, match="t.jpg: cannot decode image"):
        read_rgb(path)


def test_grayscale_rgba_and_16_bit_are_converted(tmp_path):
    gray = np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    out = read_rgb(tmp_path / "g.png")
    assert out.shape == (64, 64, 3) and np.allclose(out[..., 0], gray / 255) and np.allclose(out[..., 0], out[..., 2])

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10  # alpha is discarded, colour kept
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.allclose(read_rgb(tmp_path / "a.png")[..., 0], 200 / 255)

    sixteen = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 250)
    Image.fromarray(sixteen).save(tmp_path / "s.png")
    assert np.allclose(read_rgb(tmp_path / "s.png")[..., 1], sixteen / 65535, atol=1e-6)


def test_image_smaller_than_the_model_minimum(invoke, tmp_path):
    root = _folder(tmp_path, {"tiny.png": _good(size=16)})
    result = _run(invoke, tmp_path, "--dataset", "folder", "--dataset-param", f"root={root}", "--attack", "fgsm",
                  "--dataset-param", "test_ratio=1.0")
    _one_line_error(result, "tiny.png", "smaller than the minimum input 32x32 of model 'cnniqa'")


class NaNPlugin:
    @hookimpl
    def register_models(self, register):
        register(NaNModel)


def test_nan_scores_are_refused(invoke, tmp_path, plugin):
    plugin(NaNPlugin(), "nan-plugin")
    root = _folder(tmp_path, {"a.png": _good()})
    result = _run(invoke, tmp_path, "--model", "test-nan", "--weights", "random", "--dataset", "folder",
                  "--dataset-param", f"root={root}", "--dataset-param", "test_ratio=1.0", "--attack", "fgsm")
    _one_line_error(result, "model 'test-nan'", "non-finite clean score", "a.png")


def test_missing_weights_file(invoke, tmp_path):
    _one_line_error(_run(invoke, tmp_path, "--weights", str(tmp_path / "nope.safetensors"), "--attack", "fgsm"),
                    "nope.safetensors", "not found")


def test_malicious_pickle_is_refused(tmp_path):
    import pickle

    from iqabench.artifacts import load_state
    from iqabench.errors import WeightsError

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(WeightsError, match="evil.pt: refused to load"):
        load_state(path)
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(load_state(tmp_path / "ok.pt")["w"], torch.ones(2))
