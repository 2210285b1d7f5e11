"""Built-in models.  Heavy modules are imported inside the hook."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_models(register):
    from .cnniqa import CNNIQA

    register(CNNIQA)
