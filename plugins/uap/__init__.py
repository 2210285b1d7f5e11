"""Universal adversarial perturbations (REFERENCES.md section 1): one
perturbation fitted on a training split, then added to every test image at
amplitudes 0.2, 0.4 and 0.8.  Heavy modules are imported inside the hook."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_attacks(register):
    from .uap import CumulativeUAP, GenerativeUAP, OptimizedUAP

    register(OptimizedUAP)
    register(CumulativeUAP)
    register(GenerativeUAP)
