"""Public IQA databases (LIVEC, KonIQ-10k, KADID-10k, TID2013, SPAQ, NIPS 2017)
read from a local copy in their official layout; nothing is downloaded."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    from .datasets import KADID10k, LIVEC, NIPS2017, SPAQ, TID2013, KonIQ10k

    for cls in (LIVEC, KonIQ10k, KADID10k, TID2013, SPAQ, NIPS2017):
        register(cls)
