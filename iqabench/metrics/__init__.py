"""Pure measurements: the five robustness scores and correlations
(:mod:`.scores`, public as ``iqabench.scores``), image distances PSNR, SSIM
and L-inf (:mod:`.images`), and a backdoor's shift metrics mMAE and mMRA
(:mod:`.backdoor`).

Imports: nothing of iqabench but its errors; numpy, scipy and torch tensors.
"""
