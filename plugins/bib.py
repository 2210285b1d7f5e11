"""BibTeX of the works the built-in plugins implement: each component names
its own in its ``citation`` class attribute (the contract ``iqabench cite``
and the entry cards read, :mod:`iqabench.board.cite`)."""

CNNIQA = """@inproceedings{kang2014cnniqa,
  author = {Kang, Le and Ye, Peng and Li, Yi and Doermann, David},
  title = {Convolutional Neural Networks for No-Reference Image Quality Assessment},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2014},
}"""

FGSM = """@inproceedings{goodfellow2015fgsm,
  author = {Goodfellow, Ian J. and Shlens, Jonathon and Szegedy, Christian},
  title = {Explaining and Harnessing Adversarial Examples},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2015},
}"""

IFGSM = """@inproceedings{kurakin2017ifgsm,
  author = {Kurakin, Alexey and Goodfellow, Ian J. and Bengio, Samy},
  title = {Adversarial Examples in the Physical World},
  booktitle = {International Conference on Learning Representations (ICLR), Workshop Track},
  year = {2017},
}"""

MIFGSM = """@inproceedings{dong2018mifgsm,
  author = {Dong, Yinpeng and Liao, Fangzhou and Pang, Tianyu and Su, Hang and Zhu, Jun and Hu, Xiaolin and Li, Jianguo},
  title = {Boosting Adversarial Attacks with Momentum},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2018},
}"""

PGD = """@inproceedings{madry2018pgd,
  author = {Madry, Aleksander and Makelov, Aleksandar and Schmidt, Ludwig and Tsipras, Dimitris and Vladu, Adrian},
  title = {Towards Deep Learning Models Resistant to Adversarial Attacks},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2018},
}"""

KORHONEN = """@inproceedings{korhonen2022adversarial,
  author = {Korhonen, Jari and You, Junyong},
  title = {Adversarial Attacks against Blind Image Quality Assessment Models},
  booktitle = {Proceedings of the 2nd Workshop on Quality of Experience in Visual Multimedia Applications (QoEVMA)},
  year = {2022},
}"""

MAD = """@article{wang2008mad,
  author = {Wang, Zhou and Simoncelli, Eero P.},
  title = {Maximum Differentiation (MAD) Competition: A Methodology for Comparing Computational Models of Perceptual Quantities},
  journal = {Journal of Vision},
  volume = {8},
  number = {12},
  year = {2008},
}"""

UAP = """@inproceedings{shumitskaya2022uap,
  author = {Shumitskaya, Ekaterina and Antsiferova, Anastasia and Vatolin, Dmitriy},
  title = {Universal Perturbation Attack on Differentiable No-Reference Image- and Video-Quality Metrics},
  booktitle = {British Machine Vision Conference (BMVC)},
  year = {2022},
}"""

BAIQA = """@inproceedings{yu2025baiqa,
  author = {Yu, Yi and others},
  title = {Backdoor Attacks against No-Reference Image Quality Assessment Models via a Scalable Trigger},
  booktitle = {AAAI Conference on Artificial Intelligence},
  year = {2025},
}"""

BLENDED = """@article{chen2017blended,
  author = {Chen, Xinyun and Liu, Chang and Li, Bo and Lu, Kimberly and Song, Dawn},
  title = {Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning},
  journal = {arXiv preprint arXiv:1712.05526},
  year = {2017},
}"""

FTROJAN = """@inproceedings{wang2022ftrojan,
  author = {Wang, Tong and Yao, Yuan and Xu, Feng and An, Shengwei and Tong, Hanghang and Wang, Ting},
  title = {An Invisible Black-Box Backdoor Attack Through Frequency Domain},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year = {2022},
}"""

WANET = """@inproceedings{nguyen2021wanet,
  author = {Nguyen, Tuan Anh and Tran, Anh Tuan},
  title = {WaNet -- Imperceptible Warping-based Backdoor Attack},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2021},
}"""

NT = """@inproceedings{liu2024nt,
  author = {Liu, Yujia and Yang, Chenxi and Li, Dingquan and Ding, Jianhao and Jiang, Tingting},
  title = {Defense Against Adversarial Attacks on No-Reference Image Quality Models with Gradient Norm Regularization},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2024},
}"""

FINE_PRUNING = """@inproceedings{liu2018fineprune,
  author = {Liu, Kang and Dolan-Gavitt, Brendan and Garg, Siddharth},
  title = {Fine-Pruning: Defending Against Backdooring Attacks on Deep Neural Networks},
  booktitle = {Research in Attacks, Intrusions, and Defenses (RAID)},
  year = {2018},
}"""

LIVEC = """@article{ghadiyaram2016livec,
  author = {Ghadiyaram, Deepti and Bovik, Alan C.},
  title = {Massive Online Crowdsourced Study of Subjective and Objective Picture Quality},
  journal = {IEEE Transactions on Image Processing},
  volume = {25},
  number = {1},
  year = {2016},
}"""

KONIQ = """@article{hosu2020koniq,
  author = {Hosu, Vlad and Lin, Hanhe and Sziranyi, Tamas and Saupe, Dietmar},
  title = {KonIQ-10k: An Ecologically Valid Database for Deep Learning of Blind Image Quality Assessment},
  journal = {IEEE Transactions on Image Processing},
  volume = {29},
  year = {2020},
}"""

KADID = """@inproceedings{lin2019kadid,
  author = {Lin, Hanhe and Hosu, Vlad and Saupe, Dietmar},
  title = {KADID-10k: A Large-scale Artificially Distorted IQA Database},
  booktitle = {International Conference on Quality of Multimedia Experience (QoMEX)},
  year = {2019},
}"""

TID2013 = """@article{ponomarenko2015tid2013,
  author = {Ponomarenko, Nikolay and others},
  title = {Image Database TID2013: Peculiarities, Results and Perspectives},
  journal = {Signal Processing: Image Communication},
  volume = {30},
  year = {2015},
}"""

SPAQ = """@inproceedings{fang2020spaq,
  author = {Fang, Yuming and Zhu, Hanwei and Zeng, Yan and Ma, Kede and Wang, Zhou},
  title = {Perceptual Quality Assessment of Smartphone Photography},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2020},
}"""
