"""Dataset images and the subsets a run draws from them: reading image files
(:mod:`.imageio`), the stratified seeded sample of a limited run
(:mod:`.sampling`), views of a dataset that serve a subset or poisoned
images (:mod:`.views`), and a defender's benign part of the train split
(:mod:`.benign`).

Imports: the plugin contract, errors and the artifact keys only.
"""
