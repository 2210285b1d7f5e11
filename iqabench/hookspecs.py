"""The plugin contract: every hook iqabench calls, in one place.

Each ``register_*`` hook receives a ``register`` callback, in the style of
``llm`` and ``tox``::

    from iqabench import hookimpl

    @hookimpl
    def register_attacks(register):
        register(MyAttack)          # a class with a unique ``name``

Import heavy modules (torch, pyiqa) *inside* the hook function, not at the
top of the plugin module: ``iqabench --help`` loads every plugin and must
stay fast.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("iqabench")
hookimpl = pluggy.HookimplMarker("iqabench")


@hookspec
def register_models(register):
    """Register IQA model classes (``iqabench.contracts.IQAModel``)."""


@hookspec
def register_datasets(register):
    """Register dataset classes (``iqabench.contracts.IQADataset``)."""


@hookspec
def register_attacks(register):
    """Register attack classes (adversarial, universal, backdoor, or any kind an
    experiment is registered for)."""


@hookspec
def register_triggers(register):
    """Register backdoor trigger classes (``apply(x, alpha)``)."""


@hookspec
def register_defenses(register):
    """Register defence classes."""


@hookspec
def register_experiments(register):
    """Register experiment kinds (``iqabench.contracts.Experiment``), each named
    after the ``Attack.kind`` it drives; the runner asks them to plan and
    evaluate every cell whose attack has that kind."""


@hookspec
def register_suites(register):
    """Register named suites: ``register(name, toml_text, description)``."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``iqabench`` command group."""


@hookspec
def on_result(record):
    """Observer: called with each finished cell summary (a dict)."""
