"""AMI-FGSM's cell key depends on the NIQE model's content, not on where
the artifact cache lives: the same fitted model in two caches (two machines,
a moved ``$IQABENCH_CACHE``) gives the same provenance, hence the same key;
a model with other content does not."""
from __future__ import annotations

import shutil

import iqabench
from iqabench.artifacts import config_key


def _provenance(monkeypatch, cache):
    monkeypatch.setenv("IQABENCH_CACHE", str(cache))
    return iqabench.get_attack("amifgsm").provenance()


def test_the_niqe_provenance_names_no_cache_path(tmp_path, monkeypatch):
    first = _provenance(monkeypatch, tmp_path / "a")
    shutil.copytree(tmp_path / "a" / "niqe", tmp_path / "b" / "niqe")
    second = _provenance(monkeypatch, tmp_path / "b")
    assert str(tmp_path) not in str(first)
    assert config_key(first) == config_key(second)
    # other content: another key
    fitted = next((tmp_path / "b" / "niqe").glob("*.safetensors"))
    fitted.write_bytes(fitted.read_bytes() + b" ")
    from iqabench_plugins.adversarial import niqe

    niqe._cached_model.cache_clear()
    try:
        third = _provenance(monkeypatch, tmp_path / "b")
    except Exception:
        return  # a damaged file may also be refused outright
    assert config_key(third) != config_key(first)
