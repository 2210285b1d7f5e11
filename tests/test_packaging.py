"""The wheel ships every package: pyproject's explicit package list names
each folder of the core and of the built-in plugins that holds Python code.

An editable install (what the tests run on) finds a subpackage missing from
the list; a user's ``pip install iqabench`` would not, and would fail at the
first import of it.  Also: every built-in plugin module registered under the
``iqabench`` entry-point group lives in a listed package.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _packages_on_disk() -> set[str]:
    out = set()
    for top, installed_as in (("iqabench", "iqabench"), ("plugins", "iqabench_plugins")):
        for init in (ROOT / top).rglob("*.py"):
            parts = init.parent.relative_to(ROOT / top).parts
            if "__pycache__" in parts:
                continue
            out.add(".".join((installed_as, *parts)))
    return out


def test_every_python_folder_is_a_listed_package():
    listed = set(_project()["tool"]["setuptools"]["packages"])
    missing = _packages_on_disk() - listed
    assert not missing, f"pyproject.toml [tool.setuptools] packages lacks {sorted(missing)}"


def test_listed_packages_exist():
    project = _project()
    dirs = project["tool"]["setuptools"]["package-dir"]
    for name in project["tool"]["setuptools"]["packages"]:
        top, *rest = name.split(".")
        assert (ROOT / dirs[top] / Path(*rest)).is_dir(), name  # a data-only package has no __init__


def test_entry_points_live_in_listed_packages():
    project = _project()
    listed = set(project["tool"]["setuptools"]["packages"])
    for name, target in project["project"]["entry-points"]["iqabench"].items():
        module = target.split(":")[0]
        assert module in listed or module.rpartition(".")[0] in listed, (name, target)
