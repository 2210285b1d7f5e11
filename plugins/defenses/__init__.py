"""Built-in defences: NT (training-time), fine-tuning and pruning (post-training)."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_defenses(register):
    from .finetune import FineTune
    from .nt import NT
    from .prune import Prune

    register(NT)
    register(FineTune)
    register(Prune)
