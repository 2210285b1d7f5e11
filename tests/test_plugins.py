"""The plugin surface: discovery, duplicates, the disable switch, a real
third-party plugin loaded through its own package metadata."""
import json
import os
import subprocess
import sys

import pytest

import iqabench
from iqabench import hookimpl
from iqabench.errors import PluginError, UnknownNameError
from iqabench.registry import lookup, plugin_infos, registry

from conftest import EXAMPLE_PLUGIN, iqabench_exe
from models_for_tests import LinearScore


def test_builtin_plugins_come_through_the_entry_point_group():
    infos = plugin_infos()
    for name in ("models", "datasets", "adversarial", "suites"):
        assert infos[name].builtin and infos[name].distribution == "iqabench"
    assert {"fgsm", "ifgsm"} <= set(registry("attack"))
    assert "cnniqa" in registry("model") and "embedded" in registry("dataset")


class DuplicateFGSM:
    @hookimpl
    def register_attacks(self, register):
        register(type("Dup", (), {"name": "fgsm"}))


def test_a_name_registered_twice_names_both_plugins(plugin):
    plugin(DuplicateFGSM(), "my-dup-plugin")
    with pytest.raises(PluginError, match=r"attack 'fgsm' is registered twice: by plugin 'adversarial' and by plugin 'my-dup-plugin'"):
        registry("attack")


class LinearPlugin:
    @hookimpl
    def register_models(self, register):
        register(LinearScore)


def test_a_plugin_registered_in_a_fixture_is_usable_through_the_api(plugin):
    plugin(LinearPlugin(), "linear-plugin")
    model = iqabench.get_model("test-linear", weights="random")
    assert lookup("model", "test-linear").plugin == "linear-plugin"
    assert model.weights.startswith("random-init")


def test_unknown_names_list_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown attack 'ifgms'; did you mean ifgsm"):
        iqabench.get_attack("ifgms")
    with pytest.raises(UnknownNameError, match=r"unknown model 'cnnqa'; did you mean cnniqa"):
        iqabench.get_model("cnnqa")


def _env_with_example(cli_env):
    env = dict(cli_env)
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE_PLUGIN), env.get("PYTHONPATH", "")])
    return env


def test_third_party_plugin_is_listed_and_can_be_disabled(cli_env):
    env = _env_with_example(cli_env)
    out = subprocess.run([iqabench_exe(), "plugins", "--json"], env=env, capture_output=True, text=True, check=True)
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["example"]["distribution"] == "iqabench-example"
    assert plugins["example"]["version"] == "0.1.0" and not plugins["example"]["builtin"]
    assert plugins["example"]["registered"] == {"attack": ["example-noise", "example-shift"],
                                                "experiment": ["stability"], "model": ["example-sharpness"]}

    env["IQABENCH_DISABLE_PLUGINS"] = "1"
    out = subprocess.run([iqabench_exe(), "plugins", "--json"], env=env, capture_output=True, text=True, check=True)
    names = {p["name"] for p in json.loads(out.stdout)}
    assert "example" not in names and {"models", "adversarial"} <= names  # built-ins stay


def test_third_party_model_and_attack_run_end_to_end(cli_env, tmp_path):
    env = _env_with_example(cli_env)
    out = subprocess.run(
        [iqabench_exe(), "run", "--model", "example-sharpness", "--attack", "example-noise", "--dataset", "embedded",
         "--limit", "8", "--leaderboard", str(tmp_path / "board"), "-q"],
        env=env, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    board = (tmp_path / "board" / "adversarial.csv").read_text()
    assert "example-sharpness" in board and "example-noise" in board


def test_third_party_experiment_kind_runs_through_the_hook(cli_env, tmp_path):
    """The example plugin's own kind of experiment (``stability``, registered with
    ``register_experiments``) runs, is stored and resumes like the core's."""
    env = _env_with_example(cli_env)
    store = tmp_path / "s.sqlite"
    args = [iqabench_exe(), "run", "--model", "example-sharpness", "--attack", "example-shift", "--dataset",
            "embedded", "--limit", "4", "--store", str(store), "--leaderboard", str(tmp_path / "board"), "-q"]
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "mean_abs_change" in out.stdout  # the run's console report
    from iqabench.run.store import Store

    (cell,) = Store(store).cells()
    rows = Store(store).images(cell["key"])
    assert cell["kind"] == "stability" and len(rows) == 4
    changes = [abs(r["attacked"] - r["clean"]) for r in rows]
    assert cell["summary"]["mean_abs_change"] == pytest.approx(sum(changes) / 4)
    again = subprocess.run(args, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "skip" in again.stderr  # finished: found by its key


def test_help_does_not_import_torch_or_pyiqa(cli_env):
    code = ("import sys, time; t=time.perf_counter(); from iqabench.cli import cli, _load_plugin_commands;"
            "_load_plugin_commands();"
            "from click.testing import CliRunner; r=CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0;"
            "print(time.perf_counter()-t, 'torch' in sys.modules, 'pyiqa' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, check=True)
    seconds, torch_loaded, pyiqa_loaded = out.stdout.split()
    # --help must not pay for torch (~2 s to import) or pyiqa (~7 s)
    assert torch_loaded == "False" and pyiqa_loaded == "False"
