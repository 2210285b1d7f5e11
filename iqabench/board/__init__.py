"""The leaderboard, a pure function of the results store: one renderer per
section -- the adversarial table (:mod:`.adversarial`), attack strength
(query curves, ladders, transfer, JPEG: :mod:`.strength`), the attack x defence
matrix (:mod:`.defenses`), BAIQA's Table 1 (:mod:`.backdoor`), backdoor x
defence (:mod:`.backdoor_defenses`), the poisoning budget
(:mod:`.backdoor_budget`) -- and the page that assembles them (:mod:`.page`).

Imports: the store (read only), the registry and parameter labels; never
the experiments, the models or the CLI.
"""
