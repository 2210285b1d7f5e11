"""The works the core's experiment kinds implement (their ``citation``,
:mod:`iqabench.board.cite`); the built-in plugins' entries are in
``plugins/bib.py``, which re-exports these two for the attacks that
implement them.  Checked where a ``# checked`` comment says so."""

# checked: the citation in the MSU benchmark's released README (volume, pages, DOI); arXiv:2310.06958 (authors)
MSU = """@inproceedings{antsiferova2024comparing,
  author = {Antsiferova, Anastasia and Abud, Khaled and Gushchin, Aleksandr and Shumitskaya, Ekaterina and Lavrushkin, Sergey and Vatolin, Dmitriy},
  title = {Comparing the Robustness of Modern No-Reference Image- and Video-Quality Metrics to Adversarial Attacks},
  booktitle = {AAAI Conference on Artificial Intelligence},
  volume = {38},
  number = {2},
  pages = {700--708},
  year = {2024},
  doi = {10.1609/aaai.v38i2.27827},
  eprint = {2310.06958},
  archiveprefix = {arXiv},
}"""

# checked: authors and title on arXiv:2412.07277 (whose page links the released code); venue: the release
BAIQA = """@inproceedings{yu2025baiqa,
  author = {Yu, Yi and Xia, Song and Lin, Xun and Yang, Wenhan and Lu, Shijian and Tan, Yap-Peng and Kot, Alex},
  title = {Backdoor Attacks against No-Reference Image Quality Assessment Models via a Scalable Trigger},
  booktitle = {AAAI Conference on Artificial Intelligence},
  year = {2025},
  eprint = {2412.07277},
  archiveprefix = {arXiv},
}"""
