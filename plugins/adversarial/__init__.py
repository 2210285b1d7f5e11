"""Input-specific adversarial attacks (the MSU robustness benchmark family,
REFERENCES.md section 1, and PGD)."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_attacks(register):
    from .fgsm import FGSM, IFGSM
    from .korhonen import Korhonen
    from .madc import MADC
    from .mifgsm import AMIFGSM, MIFGSM
    from .pgd import PGD

    register(FGSM)
    register(IFGSM)
    register(MIFGSM)
    register(AMIFGSM)
    register(Korhonen)
    register(MADC)
    register(PGD)
