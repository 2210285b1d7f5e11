"""Models made from the registry: built with their weights and card
(:mod:`.build`), their FIXED clean score range (:mod:`.score_range`),
trained with their own recipe (:mod:`.training`), scored (:mod:`.evaluation`),
saved with a model card (:mod:`.cards`), cached when trained
(:mod:`.trained`) or defended (:mod:`.defended`), and behind an input
defence with the attacker's view of it (:mod:`.purified`).

Imports: the plugin contract, the registry, data and metrics; never the
experiments, the run, the board or the CLI.
"""
