"""Dataset images and the subsets a run draws from them: reading image files
(:mod:`.imageio`), the stratified seeded sample of a limited run
(:mod:`.sampling`), views of a dataset that serve a subset or poisoned
images (:mod:`.views`), a defender's benign part of the train split
(:mod:`.benign`), and an attacked image as a user gets it back from an
8-bit or JPEG file (:mod:`.delivery`).

Imports: the plugin contract, errors and the artifact keys only.
"""
