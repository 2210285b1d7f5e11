"""The model zoo: published NR-IQA models backed by pyiqa, built offline.

Importing this package is cheap: torch and pyiqa are imported when the
registry is first asked for models (the hook below), pyiqa itself only
when a zoo model is constructed.
"""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_models(register):
    from .models import ZOO_MODELS

    for cls in ZOO_MODELS:
        register(cls)
