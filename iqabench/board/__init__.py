"""The leaderboard, a pure function of the results store: one section per
module, each implementing the small interface of :mod:`.section`
(``section(board) -> Part``: its CSV, Markdown, figures and page) -- the
overview (:mod:`.overview`), the adversarial table (:mod:`.adversarial`),
universal attacks per amplitude (:mod:`.universal`), attack strength (query
curves, ladders, transfer, JPEG: :mod:`.strength`), the attack x defence
matrix (:mod:`.defenses`), input purification non-adaptive vs adaptive and
certified intervals (:mod:`.purification`), BAIQA's Table 1 (:mod:`.backdoor`), backdoor x
defence (:mod:`.backdoor_defenses`), the poisoning budget
(:mod:`.backdoor_budget`), the galleries (:mod:`.galleries`) -- the page that assembles them (:mod:`.page`), the
static site (:mod:`.site`, :mod:`.html`, ``assets/``), the figures
(:mod:`.plots`), and the open data: exports (:mod:`.export`), entry cards
(:mod:`.entries`) and citations (:mod:`.cite`).

Imports: the store (read only), the registry and parameter labels; never
the experiments, the models or the CLI.
"""
