"""``python -m iqabench.cli``: the ``iqabench`` command."""
from . import main

main()
