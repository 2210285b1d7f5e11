"""Pure measurements: the five robustness scores and correlations
(:mod:`.scores`, public as ``iqabench.scores``), image distances PSNR, SSIM
and L-inf (:mod:`.images`), a backdoor's shift metrics mMAE and mMRA
(:mod:`.backdoor`), and the defences benchmark's defence scores and
certified-interval figures (:mod:`.defences`).

Imports: nothing of iqabench but its errors; numpy, scipy and torch tensors.
"""
