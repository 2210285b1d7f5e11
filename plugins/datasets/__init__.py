"""Built-in datasets.  Heavy modules are imported inside the hook."""
from iqabench.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    from .embedded import EmbeddedDataset
    from .folder import FolderDataset

    register(EmbeddedDataset)
    register(FolderDataset)
