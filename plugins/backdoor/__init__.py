"""Backdoors (REFERENCES.md section 2): BAIQA's UAP-DCT trigger and the
FTrojan, Blended and WaNet baselines (``apply(x, alpha)`` with a float or
per-image ``alpha``), and the BAIQA attacks ``baiqa-p`` (poison label) and
``baiqa-c`` (clean label), whose ``trigger`` parameter also runs the
baselines.  Heavy modules are imported inside the hooks."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_triggers(register):
    from .blended import Blended
    from .ftrojan import FTrojan
    from .uap_dct import UAPDCT
    from .wanet import WaNet

    register(UAPDCT)
    register(FTrojan)
    register(Blended)
    register(WaNet)


@hookimpl
def register_attacks(register):
    from .baiqa import BAIQACleanLabel, BAIQAPoisonLabel

    register(BAIQAPoisonLabel)
    register(BAIQACleanLabel)
