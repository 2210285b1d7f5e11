"""BibTeX of the works the built-in plugins implement: each component names
its own in its ``citation`` class attribute (the contract ``iqabench cite``
and the entry cards read, :mod:`iqabench.board.cite`).

Checked against the publisher's or arXiv's page, the released code or
pyiqa's source where a ``# checked`` comment above the entry says so; the
others (their DOIs and arXiv ids included) are the papers' well-known
records, not yet checked against a source: check those before quoting them.
``tests/test_citations.py`` parses every entry."""
from iqabench.experiments.citations import BAIQA, MSU  # noqa: F401  (the core's experiments cite them too)

CNNIQA = """@inproceedings{kang2014cnniqa,
  author = {Kang, Le and Ye, Peng and Li, Yi and Doermann, David},
  title = {Convolutional Neural Networks for No-Reference Image Quality Assessment},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages = {1733--1740},
  year = {2014},
  doi = {10.1109/CVPR.2014.224},
}"""

FGSM = """@inproceedings{goodfellow2015fgsm,
  author = {Goodfellow, Ian J. and Shlens, Jonathon and Szegedy, Christian},
  title = {Explaining and Harnessing Adversarial Examples},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2015},
  eprint = {1412.6572},
  archiveprefix = {arXiv},
}"""

IFGSM = """@inproceedings{kurakin2017ifgsm,
  author = {Kurakin, Alexey and Goodfellow, Ian J. and Bengio, Samy},
  title = {Adversarial Examples in the Physical World},
  booktitle = {International Conference on Learning Representations (ICLR), Workshop Track},
  year = {2017},
  eprint = {1607.02533},
  archiveprefix = {arXiv},
}"""

MIFGSM = """@inproceedings{dong2018mifgsm,
  author = {Dong, Yinpeng and Liao, Fangzhou and Pang, Tianyu and Su, Hang and Zhu, Jun and Hu, Xiaolin and Li, Jianguo},
  title = {Boosting Adversarial Attacks with Momentum},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages = {9185--9193},
  year = {2018},
  eprint = {1710.06081},
  archiveprefix = {arXiv},
}"""

PGD = """@inproceedings{madry2018pgd,
  author = {Madry, Aleksander and Makelov, Aleksandar and Schmidt, Ludwig and Tsipras, Dimitris and Vladu, Adrian},
  title = {Towards Deep Learning Models Resistant to Adversarial Attacks},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2018},
  eprint = {1706.06083},
  archiveprefix = {arXiv},
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
  pages = {8},
  year = {2008},
  doi = {10.1167/8.12.8},
}"""

# checked: title and venue (BMVC 2022) on the authors' released code's page
UAP = """@inproceedings{shumitskaya2022uap,
  author = {Shumitskaya, Ekaterina and Antsiferova, Anastasia and Vatolin, Dmitriy},
  title = {Universal Perturbation Attack on Differentiable No-Reference Image- and Video-Quality Metrics},
  booktitle = {British Machine Vision Conference (BMVC)},
  year = {2022},
}"""


BLENDED = """@article{chen2017blended,
  author = {Chen, Xinyun and Liu, Chang and Li, Bo and Lu, Kimberly and Song, Dawn},
  title = {Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning},
  journal = {arXiv preprint arXiv:1712.05526},
  year = {2017},
  eprint = {1712.05526},
  archiveprefix = {arXiv},
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
  eprint = {2102.10369},
  archiveprefix = {arXiv},
}"""

# checked: CVF open access page of the paper (authors, pages), arXiv:2403.11397
NT = """@inproceedings{liu2024nt,
  author = {Liu, Yujia and Yang, Chenxi and Li, Dingquan and Ding, Jianhao and Jiang, Tingting},
  title = {Defense Against Adversarial Attacks on No-Reference Image Quality Models with Gradient Norm Regularization},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages = {25554--25563},
  year = {2024},
  eprint = {2403.11397},
  archiveprefix = {arXiv},
}"""

FINE_PRUNING = """@inproceedings{liu2018fineprune,
  author = {Liu, Kang and Dolan-Gavitt, Brendan and Garg, Siddharth},
  title = {Fine-Pruning: Defending Against Backdooring Attacks on Deep Neural Networks},
  booktitle = {Research in Attacks, Intrusions, and Defenses (RAID)},
  series = {Lecture Notes in Computer Science},
  volume = {11050},
  pages = {273--294},
  year = {2018},
  doi = {10.1007/978-3-030-00470-5_13},
  eprint = {1805.12185},
  archiveprefix = {arXiv},
}"""

LIVEC = """@article{ghadiyaram2016livec,
  author = {Ghadiyaram, Deepti and Bovik, Alan C.},
  title = {Massive Online Crowdsourced Study of Subjective and Objective Picture Quality},
  journal = {IEEE Transactions on Image Processing},
  volume = {25},
  number = {1},
  pages = {372--387},
  year = {2016},
  doi = {10.1109/TIP.2015.2500021},
}"""

KONIQ = """@article{hosu2020koniq,
  author = {Hosu, Vlad and Lin, Hanhe and Sziranyi, Tamas and Saupe, Dietmar},
  title = {KonIQ-10k: An Ecologically Valid Database for Deep Learning of Blind Image Quality Assessment},
  journal = {IEEE Transactions on Image Processing},
  volume = {29},
  pages = {4041--4056},
  year = {2020},
  doi = {10.1109/TIP.2020.2967829},
}"""

KADID = """@inproceedings{lin2019kadid,
  author = {Lin, Hanhe and Hosu, Vlad and Saupe, Dietmar},
  title = {KADID-10k: A Large-scale Artificially Distorted IQA Database},
  booktitle = {International Conference on Quality of Multimedia Experience (QoMEX)},
  year = {2019},
  doi = {10.1109/QoMEX.2019.8743252},
}"""

TID2013 = """@article{ponomarenko2015tid2013,
  author = {Ponomarenko, Nikolay and Jin, Lina and Ieremeiev, Oleg and Lukin, Vladimir and Egiazarian, Karen and Astola, Jaakko and Vozel, Benoit and Chehdi, Kacem and Carli, Marco and Battisti, Federica and Kuo, C.-C. Jay},
  title = {Image Database TID2013: Peculiarities, Results and Perspectives},
  journal = {Signal Processing: Image Communication},
  volume = {30},
  pages = {57--77},
  year = {2015},
  doi = {10.1016/j.image.2014.10.009},
}"""

SPAQ = """@inproceedings{fang2020spaq,
  author = {Fang, Yuming and Zhu, Hanwei and Zeng, Yan and Ma, Kede and Wang, Zhou},
  title = {Perceptual Quality Assessment of Smartphone Photography},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages = {3677--3686},
  year = {2020},
}"""

NIPS2017 = """@incollection{kurakin2018competition,
  author = {Kurakin, Alexey and Goodfellow, Ian and Bengio, Samy and Dong, Yinpeng and Liao, Fangzhou and Liang, Ming and Pang, Tianyu and Zhu, Jun and Hu, Xiaolin and Xie, Cihang and others},
  title = {Adversarial Attacks and Defences Competition},
  booktitle = {The NIPS '17 Competition: Building Intelligent Systems},
  publisher = {Springer},
  year = {2018},
  eprint = {1804.00097},
  archiveprefix = {arXiv},
}"""


AMIFGSM = """@article{sang2023amifgsm,
  author = {Sang, Qingbing and Zhang, Hongguo and Liu, Lixiong and Wu, Xiaojun and Bovik, Alan C.},
  title = {On the Generation of Adversarial Examples for Image Quality Assessment},
  journal = {The Visual Computer},
  year = {2023},
}"""

# ------------------------------------------------------- the model zoo ---
PYIQA = """@misc{chen2022pyiqa,
  author = {Chen, Chaofeng and Mo, Jiadi},
  title = {{IQA-PyTorch}: PyTorch Toolbox for Image Quality Assessment},
  howpublished = {\\url{https://github.com/chaofengc/IQA-PyTorch}},
  year = {2022},
}"""

# checked: the reference in pyiqa's hypernet_arch.py (authors, pages)
HYPERIQA = """@inproceedings{su2020hyperiqa,
  author = {Su, Shaolin and Yan, Qingsen and Zhu, Yu and Zhang, Cheng and Ge, Xin and Sun, Jinqiu and Zhang, Yanning},
  title = {Blindly Assess Image Quality in the Wild Guided by a Self-Adaptive Hyper Network},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages = {3667--3676},
  year = {2020},
}"""

DBCNN = """@article{zhang2020dbcnn,
  author = {Zhang, Weixia and Ma, Kede and Yan, Jia and Deng, Dexiang and Wang, Zhou},
  title = {Blind Image Quality Assessment Using a Deep Bilinear Convolutional Neural Network},
  journal = {IEEE Transactions on Circuits and Systems for Video Technology},
  volume = {30},
  number = {1},
  pages = {36--47},
  year = {2020},
  doi = {10.1109/TCSVT.2018.2886771},
}"""

# checked: the reference in pyiqa's tres_arch.py (authors, venue)
TRES = """@inproceedings{golestaneh2022tres,
  author = {Golestaneh, S. Alireza and Dadsetan, Saba and Kitani, Kris M.},
  title = {No-Reference Image Quality Assessment via Transformers, Relative Ranking, and Self-Consistency},
  booktitle = {IEEE/CVF Winter Conference on Applications of Computer Vision (WACV)},
  year = {2022},
}"""

MANIQA = """@inproceedings{yang2022maniqa,
  author = {Yang, Sidi and Wu, Tianhe and Shi, Shuwei and Lao, Shanshan and Gong, Yuan and Cao, Mingdeng and Wang, Jiahao and Yang, Yujiu},
  title = {{MANIQA}: Multi-Dimension Attention Network for No-Reference Image Quality Assessment},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition Workshops (CVPRW)},
  pages = {1191--1200},
  year = {2022},
}"""

MUSIQ = """@inproceedings{ke2021musiq,
  author = {Ke, Junjie and Wang, Qifei and Wang, Yilin and Milanfar, Peyman and Yang, Feng},
  title = {{MUSIQ}: Multi-Scale Image Quality Transformer},
  booktitle = {IEEE/CVF International Conference on Computer Vision (ICCV)},
  pages = {5148--5157},
  year = {2021},
}"""

TOPIQ = """@article{chen2024topiq,
  author = {Chen, Chaofeng and Mo, Jiadi and Hou, Jingwen and Wu, Haoning and Liao, Liang and Sun, Wenxiu and Yan, Qiong and Lin, Weisi},
  title = {{TOPIQ}: A Top-Down Approach From Semantics to Distortions for Image Quality Assessment},
  journal = {IEEE Transactions on Image Processing},
  volume = {33},
  year = {2024},
}"""

NIMA = """@article{talebi2018nima,
  author = {Talebi, Hossein and Milanfar, Peyman},
  title = {{NIMA}: Neural Image Assessment},
  journal = {IEEE Transactions on Image Processing},
  volume = {27},
  number = {8},
  pages = {3998--4011},
  year = {2018},
  doi = {10.1109/TIP.2018.2831899},
}"""

CLIPIQA = """@inproceedings{wang2023clipiqa,
  author = {Wang, Jianyi and Chan, Kelvin C. K. and Loy, Chen Change},
  title = {Exploring {CLIP} for Assessing the Look and Feel of Images},
  booktitle = {AAAI Conference on Artificial Intelligence},
  year = {2023},
}"""

NIQE = """@article{mittal2013niqe,
  author = {Mittal, Anish and Soundararajan, Rajiv and Bovik, Alan C.},
  title = {Making a ``Completely Blind'' Image Quality Analyzer},
  journal = {IEEE Signal Processing Letters},
  volume = {20},
  number = {3},
  pages = {209--212},
  year = {2013},
  doi = {10.1109/LSP.2012.2227726},
}"""

BRISQUE = """@article{mittal2012brisque,
  author = {Mittal, Anish and Moorthy, Anush Krishna and Bovik, Alan C.},
  title = {No-Reference Image Quality Assessment in the Spatial Domain},
  journal = {IEEE Transactions on Image Processing},
  volume = {21},
  number = {12},
  pages = {4695--4708},
  year = {2012},
  doi = {10.1109/TIP.2012.2214050},
}"""

#: each zoo model's paper, then the toolbox whose weights and layout it follows
ZOO = {name: (paper, PYIQA) for name, paper in (
    ("hyperiqa", HYPERIQA), ("dbcnn", DBCNN), ("tres", TRES), ("maniqa", MANIQA), ("musiq", MUSIQ),
    ("topiq_nr", TOPIQ), ("nima", NIMA), ("clipiqa", CLIPIQA), ("niqe", NIQE), ("brisque", BRISQUE))}

# ------------------------------------------ what the embedded data is built from ---
SSIM = """@article{wang2004ssim,
  author = {Wang, Zhou and Bovik, Alan C. and Sheikh, Hamid R. and Simoncelli, Eero P.},
  title = {Image Quality Assessment: From Error Visibility to Structural Similarity},
  journal = {IEEE Transactions on Image Processing},
  volume = {13},
  number = {4},
  pages = {600--612},
  year = {2004},
  doi = {10.1109/TIP.2003.819861},
}"""

GMSD = """@article{xue2014gmsd,
  author = {Xue, Wufeng and Zhang, Lei and Mou, Xuanqin and Bovik, Alan C.},
  title = {Gradient Magnitude Similarity Deviation: A Highly Efficient Perceptual Image Quality Index},
  journal = {IEEE Transactions on Image Processing},
  volume = {23},
  number = {2},
  pages = {684--695},
  year = {2014},
  doi = {10.1109/TIP.2013.2293423},
}"""

KADIS = """@misc{lin2020deepfl,
  author = {Lin, Hanhe and Hosu, Vlad and Saupe, Dietmar},
  title = {{DeepFL-IQA}: Weak Supervision for Deep {IQA} Feature Learning},
  howpublished = {arXiv preprint},
  year = {2020},
}"""

#: the embedded dataset's pseudo-MOS: KADIS-700k's weak-label technique over SSIM, GMSD (and CIE76)
EMBEDDED = (KADIS, SSIM, GMSD)

# -- query-based black-box attacks, input purification, certified and adversarial-training defences
# (the papers' well-known records, not yet checked against a source)
SQUARE = """@inproceedings{andriushchenko2020square,
  author = {Andriushchenko, Maksym and Croce, Francesco and Flammarion, Nicolas and Hein, Matthias},
  title = {Square Attack: a Query-Efficient Black-Box Adversarial Attack via Random Search},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year = {2020},
  eprint = {1912.00049},
  archiveprefix = {arXiv},
}"""

PARSIMONIOUS = """@inproceedings{moon2019parsimonious,
  author = {Moon, Seungyong and An, Gaon and Song, Hyun Oh},
  title = {Parsimonious Black-Box Adversarial Attacks via Efficient Combinatorial Optimization},
  booktitle = {International Conference on Machine Learning (ICML)},
  year = {2019},
  eprint = {1905.06635},
  archiveprefix = {arXiv},
}"""

NES = """@inproceedings{ilyas2018nes,
  author = {Ilyas, Andrew and Engstrom, Logan and Athalye, Anish and Lin, Jessy},
  title = {Black-box Adversarial Attacks with Limited Queries and Information},
  booktitle = {International Conference on Machine Learning (ICML)},
  year = {2018},
  eprint = {1804.08598},
  archiveprefix = {arXiv},
}"""

ONEPIXEL = """@article{su2019onepixel,
  author = {Su, Jiawei and Vargas, Danilo Vasconcellos and Sakurai, Kouichi},
  title = {One Pixel Attack for Fooling Deep Neural Networks},
  journal = {IEEE Transactions on Evolutionary Computation},
  volume = {23},
  number = {5},
  pages = {828--841},
  year = {2019},
  eprint = {1710.08864},
  archiveprefix = {arXiv},
}"""

# the title is the release's README's (checked); authors, venue and arXiv id are not
GUARDIANS = """@inproceedings{gushchin2025guardians,
  author = {Gushchin, Alexander and Abud, Khaled and Bychkov, Georgii and Shumitskaya, Ekaterina and Chistyakova, Anna and Lavrushkin, Sergey and Rasheed, Bader and Malyshev, Kirill and Vatolin, Dmitriy and Antsiferova, Anastasia},
  title = {Guardians of Image Quality: Benchmarking Defenses Against Adversarial Attacks on Image Quality Metrics},
  booktitle = {International Conference on Machine Learning (ICML)},
  year = {2025},
  eprint = {2408.01541},
  archiveprefix = {arXiv},
}"""

SHIN_JPEG = """@inproceedings{shin2017jpeg,
  author = {Shin, Richard and Song, Dawn},
  title = {{JPEG}-resistant Adversarial Images},
  booktitle = {NIPS 2017 Workshop on Machine Learning and Computer Security},
  year = {2017},
}"""

MEDIAN_SMOOTHING = """@inproceedings{chiang2020median,
  author = {Chiang, Ping-yeh and Curry, Michael J. and Abdelkader, Ahmed and Kumar, Aounon and Dickerson, John and Goldstein, Tom},
  title = {Detection as Regression: Certified Object Detection with Median Smoothing},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year = {2020},
  eprint = {2007.03730},
  archiveprefix = {arXiv},
}"""

IQA_ADV_TRAIN = """@article{chistyakova2024advtrain,
  author = {Chistyakova, Anna and Antsiferova, Anastasia and Khrebtov, Maksim and Lavrushkin, Sergey and Arkhipenko, Konstantin and Vatolin, Dmitriy and Turdakov, Denis},
  title = {Increasing the Robustness of Image Quality Assessment Models Through Adversarial Training},
  journal = {Technologies},
  volume = {12},
  number = {11},
  pages = {220},
  year = {2024},
}"""

