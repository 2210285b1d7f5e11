"""Built-in defences: NT (training-time), fine-tuning and pruning (post-training),
input purification and certified median smoothing (inference-time)."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_defenses(register):
    from .finetune import FineTune
    from .jpeg import JPEG, DiffJPEG
    from .nt import NT
    from .prune import Prune
    from .purifiers import PURIFIERS
    from .smoothing import MedianSmoothing

    register(NT)
    register(FineTune)
    register(Prune)
    for cls in (JPEG, DiffJPEG, *PURIFIERS, MedianSmoothing):
        register(cls)
