"""The core's experiment kinds, registered through ``register_experiments``
like any plugin's: ``adversarial`` (:mod:`.adversarial`), ``universal``
(:mod:`.universal`) -- both built on :mod:`.evasion` -- and ``backdoor``
(:mod:`.backdoor`).  The registry loads this module as the built-in plugin
``experiments`` (:data:`iqabench.registry.CORE_PLUGINS`); the runner never
imports it.

Imports: the models, data, metrics and the plugin contract below it; never
:mod:`iqabench.run`, :mod:`iqabench.board` or :mod:`iqabench.cli`.  Heavy
modules are imported inside the hook (``iqabench --help`` loads it).
"""
from ..hookspecs import hookimpl


@hookimpl
def register_experiments(register):
    from .adversarial import AdversarialExperiment
    from .backdoor.experiment import BackdoorExperiment
    from .universal import UniversalExperiment

    register(AdversarialExperiment)
    register(UniversalExperiment)
    register(BackdoorExperiment)
