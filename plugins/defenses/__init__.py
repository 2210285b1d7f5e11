"""Built-in defences: NT and adversarial training (training-time), fine-tuning and pruning (post-training),
input purification and certified median smoothing (inference-time)."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_defenses(register):
    from .advtrain import AdvTrain
    from .finetune import FineTune
    from .jpeg import JPEG, DiffJPEG
    from .nt import NT
    from .prune import Prune
    from .purifiers import PURIFIERS
    from .smoothing import MedianSmoothing

    register(NT)
    register(FineTune)
    register(Prune)
    register(AdvTrain)
    for cls in (JPEG, DiffJPEG, *PURIFIERS, MedianSmoothing):
        register(cls)
