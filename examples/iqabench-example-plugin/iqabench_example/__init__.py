"""An example third-party iqabench plugin.

It registers a model, two attacks and an experiment kind through the
``iqabench`` entry-point group, touching nothing inside iqabench.  Heavy
imports happen inside the hooks so that ``iqabench --help`` stays fast.
"""
from iqabench import hookimpl


@hookimpl
def register_models(register):
    from .components import GradientSharpness

    register(GradientSharpness)


@hookimpl
def register_attacks(register):
    from .components import UniformNoise
    from .experiments import CyclicShift

    register(UniformNoise)
    register(CyclicShift)


@hookimpl
def register_experiments(register):
    from .experiments import StabilityExperiment

    register(StabilityExperiment)
