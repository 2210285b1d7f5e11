"""Input-specific adversarial attacks (the MSU robustness benchmark family,
REFERENCES.md section 1, and PGD), and the query-based black-box attacks
of the MSU defences benchmark (square, parsimonious, grad-est, one-pixel)."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_attacks(register):
    from .blackbox import GradEst, Parsimonious, SquareAttack
    from .fgsm import FGSM, IFGSM
    from .korhonen import Korhonen
    from .madc import MADC
    from .mifgsm import AMIFGSM, MIFGSM
    from .onepixel import OnePixel
    from .pgd import PGD

    register(FGSM)
    register(IFGSM)
    register(MIFGSM)
    register(AMIFGSM)
    register(Korhonen)
    register(MADC)
    register(PGD)
    register(SquareAttack)
    register(Parsimonious)
    register(GradEst)
    register(OnePixel)
