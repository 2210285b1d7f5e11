"""A small results store for the board's tests: two tiny models x three
evasion attacks (one universal, at two amplitudes) on tiny data, built once
per test session through the real ``iqabench run``."""
from __future__ import annotations

import pytest

from models_for_tests import MeanLuma, Registers, TinyConvIQA, TinyData

#: the models and attacks of the small store (universal attacks: the per-amplitude rows and their mean)
MODELS = ("test-tiny-cnn", "test-mean-luma")
ATTACKS = ("fgsm", "korhonen", "cumulative-uap")
#: their families (the overview's columns): one attack each
FAMILY = {"fgsm": "one-step", "korhonen": "perceptual", "cumulative-uap": "universal"}


@pytest.fixture(scope="session")
def small_store(tmp_path_factory):
    """The path of the small store (session-wide: every board test reads it, none writes it)."""
    from click.testing import CliRunner

    from iqabench.cli import cli
    from iqabench.registry import register_plugin, unregister_plugin

    root = tmp_path_factory.mktemp("small-store")
    store = root / "store.sqlite"
    register_plugin(Registers([TinyConvIQA, MeanLuma], [TinyData.make(n_train=4, n_test=5)]), "board-fixture")
    try:
        for model in MODELS:
            args = ["run", "-m", model, "-d", "test-tiny-data", "--batch-size", "4", "--store", str(store), "-q",
                    "--no-leaderboard", "-p", "korhonen.iters=2", "-p", "cumulative-uap.size=16",
                    "-p", "cumulative-uap.epochs=1"]
            for attack in ATTACKS:
                args += ["-a", attack]
            result = CliRunner().invoke(cli, args, catch_exceptions=False)
            assert result.exit_code == 0, result.output
    finally:
        unregister_plugin("board-fixture")
    return store
