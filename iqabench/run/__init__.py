"""Running a benchmark: suite files -> cells (:mod:`.suite`), cells -> the cells
a run does (:mod:`.plan`), the runner that plans, executes and stores them
(:mod:`.runner`), the results store (:mod:`.store`) and the run manifest
(:mod:`.manifest`).

Imports: the plugin contract and the registry; the experiments only through
the registry (``register_experiments``), never by import.
"""
