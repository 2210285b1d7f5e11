"""The contracts plugins implement, in one namespace.

Base classes that hold no concrete algorithm; they fix the shapes the
experiments, the store and the scores rely on: models (``IQAModel``,
``TrainRecipe``), datasets (``IQADataset``, ``Item``), attacks (``Attack``,
``UniversalAttack``, ``AttackResult``, ``BlackBoxAttack`` with its
``ScoreOracle``), triggers, defences, and the
experiment kinds that drive attacks (``Experiment``, with the ``CellSpec``
and ``RunContext`` it receives).  Plugins import them from here::

    from iqabench.contracts import Attack, AttackResult

Imports: :mod:`iqabench.errors` and :mod:`iqabench.artifacts` only.
"""
from .attacks import Attack, AttackResult, UniversalAttack, normalised_gain
from .backdoor import BackdoorAttack, Poison
from .blackbox import BlackBoxAttack, ScoreOracle
from .context import RunContext
from .datasets import IQADataset, Item
from .defenses import Defense, InputDefense, Regulariser
from .experiments import CellSpec, Experiment, PlannedCell
from .models import FEATURE_MASK, IQAModel, TrainRecipe
from .triggers import Trigger
from .validation import check_positive

__all__ = [
    "Attack", "AttackResult", "UniversalAttack", "normalised_gain",
    "BackdoorAttack", "Poison",
    "BlackBoxAttack", "ScoreOracle",
    "IQADataset", "Item",
    "RunContext",
    "Defense", "InputDefense", "Regulariser",
    "CellSpec", "Experiment", "PlannedCell",
    "FEATURE_MASK", "IQAModel", "TrainRecipe",
    "Trigger",
    "check_positive",
]
