"""The plugin author's path (issue 13): what a new plugin author met, tried
from the README alone -- descriptions and orientation shown, per-attack
parameters, the training size of universal attacks, the plugin switches,
finite budgets, suite errors naming the file, clean messages."""
from __future__ import annotations

import json
import subprocess

import pytest
import torch

import iqabench
from conftest import EXAMPLE_PLUGIN, iqabench_exe
from iqabench import hookimpl
from iqabench.contracts import IQADataset, Item
from iqabench.errors import DatasetError, ParameterError
from iqabench.registry import lookup
from iqabench.run.store import Store
from models_for_tests import LowerBetterLinear, MeanLuma, Registers


class Patches(IQADataset):
    """Six 16x16 test images and six train images of constant grey levels."""

    name = "test-patches"

    def splits(self):
        return ["train", "test"]

    def items(self, split):
        return [Item(f"{split}{i}", 10.0 * i, i, f"r{i % 2}") for i in range(6)]

    def load(self, item):
        return torch.full((3, 16, 16), 0.1 + 0.1 * item.source)


def author_plugin() -> Registers:
    """The plugin the author wrote: two models (one lower-is-better) and a dataset."""
    return Registers(models=(MeanLuma, LowerBetterLinear), datasets=(Patches,))


@pytest.fixture
def patches(plugin):
    plugin(author_plugin(), "author-path")


def _run(invoke, tmp_path, *args):
    store = tmp_path / "s.sqlite"
    result = invoke(["run", "-m", "test-mean-luma", "-d", "test-patches", "--store", str(store), "--no-leaderboard",
                     "-q", *args])
    return result, store


def _error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code != 0 and len(lines) == 1, result.output
    return lines[0]


# ------------------------------------------------------- what is installed
def test_plugins_command_shows_each_components_description(invoke):
    out = invoke(["plugins"]).output
    fgsm = lookup("attack", "fgsm").description
    assert fgsm and f"fgsm: {fgsm}" in out
    shown = json.loads(invoke(["plugins", "--json"]).output)
    adversarial = next(p for p in shown if p["name"] == "adversarial")
    assert adversarial["descriptions"]["attack"]["fgsm"] == fgsm


def test_describe_model_shows_its_orientation_and_score_range(invoke, patches):
    out = invoke(["describe", "model", "test-mean-luma"]).output
    assert "lower_better: False" in out and "score range: 0..100" in out
    assert "lower_better: True" in invoke(["describe", "model", "test-linear-lower"]).output


def test_an_analytic_model_records_its_provenance_instead_of_random_init(plugin):
    class Analytic(MeanLuma):
        name = "test-analytic-luma"
        provenance = "analytic (mean luma)"

    class AnalyticPlugin:
        @hookimpl
        def register_models(self, register):
            register(Analytic)

    plugin(AnalyticPlugin(), "analytic")
    assert iqabench.get_model("test-analytic-luma").weights == "analytic (mean luma)"
    plugin(author_plugin(), "author-path")
    assert iqabench.get_model("test-mean-luma", seed=3).weights == "random-init (seed 3)"  # no provenance declared


# ------------------------------------------------------------ iqabench run
def test_param_name_dot_key_targets_one_attack(invoke, tmp_path, patches):
    result, store = _run(invoke, tmp_path, "-a", "fgsm", "-a", "ifgsm", "--param", "ifgsm.iters=1",
                         "--param", "eps=4/255")
    assert result.exit_code == 0, result.output
    params = {c["config"]["attack"]["name"]: c["config"]["attack"]["params"] for c in Store(store).cells()}
    assert params["ifgsm"]["iters"] == 1 and params["ifgsm"]["eps"] == params["fgsm"]["eps"] == 4 / 255
    assert "iters" not in params["fgsm"]
    message = _error(_run(invoke, tmp_path, "-a", "fgsm", "--param", "ifgsm.iters=1")[0])
    assert "--param ifgsm.iters=1" in message and "'ifgsm' is not among" in message


def test_train_limit_sets_the_universal_attacks_training_images(invoke, tmp_path, patches):
    result, store = _run(invoke, tmp_path, "-a", "uap", "--param", "size=8", "--param", "epochs=1", "--limit", "2",
                         "--train-limit", "3")
    assert result.exit_code == 0, result.output
    specs = [c["summary"]["spec"] for c in Store(store).cells()]
    assert len(specs) == 3 and {s["train_limit"] for s in specs} == {3}


def test_run_help_says_what_the_wildcard_expands_to(invoke):
    help_text = " ".join(invoke(["run", "--help"]).output.split())
    assert "'*' = every registered adversarial and universal attack that suits the model" in help_text
    assert "--train-limit" in help_text


def test_an_infinite_budget_is_refused():
    with pytest.raises(ParameterError, match=r"'fgsm' parameter 'eps' must be a finite number > 0, got inf"):
        iqabench.get_attack("fgsm", eps=float("inf"))
    with pytest.raises(ParameterError, match="'eps'"):
        iqabench.get_attack("ifgsm", eps="inf")


def test_a_parameter_typo_in_a_suite_names_the_suite_file(invoke, tmp_path, patches):
    suite = tmp_path / "grid.toml"
    suite.write_text('models = ["test-mean-luma"]\ndatasets = ["test-patches"]\nattacks = ["ifgsm"]\n'
                     '[params.ifgsm]\nitres = 3\n')
    message = _error(invoke(["run", "--suite", str(suite), "--store", str(tmp_path / "s.sqlite"), "-q"]))
    assert "grid.toml" in message and "'itres'" in message and "did you mean 'iters'" in message


def test_the_minimum_input_message_reads_cleanly():
    model = MeanLuma()
    with pytest.raises(DatasetError) as info:
        model.require_size(torch.zeros(3, 4, 4), "image 'a.png'")
    assert str(info.value) == "image 'a.png' is 4x4, smaller than the minimum input 8x8 of model 'test-mean-luma'"


# ---------------------------------------------------------- plugin switches
def _iqabench(env, *args):
    return subprocess.run([iqabench_exe(), *args], env=env, capture_output=True, text=True)


def test_unknown_names_in_the_plugin_switches_are_errors(cli_env):
    env = dict(cli_env, PYTHONPATH=f"{EXAMPLE_PLUGIN}:{cli_env.get('PYTHONPATH', '')}")
    for var in ("IQABENCH_LOAD_PLUGINS", "IQABENCH_DISABLE_PLUGINS"):
        out = _iqabench({**env, var: "exampel"}, "plugins")
        assert out.returncode == 1, out.stdout
        assert f"{var} names 'exampel', which is not an installed third-party plugin" in out.stderr
        assert "did you mean 'example'" in out.stderr
    out = _iqabench({**env, "IQABENCH_DISABLE_PLUGINS": "models"}, "plugins")
    assert out.returncode == 1 and "'models' is built in" in out.stderr


def test_an_unknown_name_says_which_plugins_were_switched_off(cli_env):
    env = dict(cli_env, PYTHONPATH=f"{EXAMPLE_PLUGIN}:{cli_env.get('PYTHONPATH', '')}", IQABENCH_DISABLE_PLUGINS="1")
    out = _iqabench(env, "describe", "model", "example-sharpness")
    assert out.returncode == 1
    assert "unknown model 'example-sharpness'" in out.stderr
    assert "IQABENCH_DISABLE_PLUGINS switched off the third-party plugins: example" in out.stderr
