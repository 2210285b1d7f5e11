"""An example third-party iqabench plugin.

It registers a model and an attack through the ``iqabench`` entry-point
group, touching nothing inside iqabench.  Heavy imports happen inside the
hooks so that ``iqabench --help`` stays fast.
"""
from iqabench import hookimpl


@hookimpl
def register_models(register):
    from .components import GradientSharpness

    register(GradientSharpness)


@hookimpl
def register_attacks(register):
    from .components import UniformNoise

    register(UniformNoise)
