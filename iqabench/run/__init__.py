"""Running a benchmark: suite files -> cells (:mod:`.suite`), cells -> the cells
a run does (:mod:`.plan`), the runner that plans, executes and stores them
(:mod:`.runner`), the results store (:mod:`.store`) with its cell claims
(:mod:`.claims`: several processes on one store) and the cells each cell spec
planned (:mod:`.resume`: ``--trust-store`` skips a finished spec without
planning it), and the run manifest (:mod:`.manifest`).  The Ray executor (:mod:`.ray_executor`, Ray imported
only when it runs) plans the run as a graph (:mod:`.graph`), has workers plan
and compute cells without the store (:mod:`.worker`), starts the longest
cells first (:mod:`.schedule`) and shows the plan's progress (:mod:`.view`).

Imports: the plugin contract and the registry; the experiments only through
the registry (``register_experiments``), never by import.
"""
