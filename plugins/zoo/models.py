"""The model zoo: published NR-IQA models as iqabench models, from one table.

Every model is a class generated from a row of :data:`ZOO` (no per-model
copy): a :class:`ZooModel` around a pyiqa architecture (or a classical
model), with

* ``lower_better`` and the nominal score range of pyiqa's metric
  (``nominal_range``: its declared ``score_range``; the FIXED range that
  normalises robustness scores is still the measured/card ``score_range``);
* the score pyiqa's metric computes at the same crops
  (tests/test_calibration.py);
* a deterministic eval-mode crop policy, typed parameters ``crops`` (number
  of crops, default 1) and ``crop_size`` (side of the square crops taken
  from the image, 0 = the whole image: pyiqa's own inference for DBCNN,
  MUSIQ, TOPIQ-NR, NIMA and CLIP-IQA; its HyperIQA, TReS and MANIQA average
  25, 50 and 20 crops placed otherwise, see the README's "The zoo against
  pyiqa").  An image smaller than the crop is
  first upscaled (bilinear) so its short side equals the crop; ``crops``
  crops are placed on an even ``ceil(sqrt(crops))`` grid (one crop: the
  centre); a network with a fixed input size gets each crop resized to it;
  the image score is the mean of its crop scores.  (The BAIQA evaluation
  uses ``crops=25``; ``crops=1`` keeps CPU attacks affordable.)
* gradients from the score to the input pixels for every model;
* weights: ``--weights default`` loads pyiqa's own checkpoint from pyiqa's
  cache (``<torch hub dir>/pyiqa/<file>``), fetched there on first use
  unless offline (:mod:`.weights`, :mod:`iqabench.downloads`) and read by
  iqabench's safe loader; ``--weights random`` keeps the random
  initialisation (recorded as ``random-init (seed N)``); ``--weights PATH``
  loads any file of the same architecture (pyiqa's key layout or ours);
* training starts from the ImageNet backbone of the model's paper
  (:data:`.weights.BACKBONES`, :meth:`ZooModel.load_backbone`);
* ``recipe(profile)``: "paper" (= "default") and "quick" training recipes.

Random-init networks predict ``out_offset + out_scale * raw`` with an affine
chosen per architecture so that training from scratch starts inside a 0-100
MOS range (a hyper-network bias moving from 0 to 50 at lr 2e-5 would take
most of a schedule); pyiqa's checkpoints are loaded with the identity
affine, so they reproduce pyiqa's scores exactly.  The affine lives in the
state dict (buffers) and travels with trained weights.
"""
from __future__ import annotations

import hashlib
import inspect
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from iqabench.contracts import IQAModel, TrainRecipe
from iqabench.errors import ModelError, ParameterError, WeightsError

from .. import bib
from . import archs, classical, weights
from .offline import pyiqa_cache_file, torch_hub_dir

# ------------------------------------------------------------------ recipes ---
# ``extra["lr_mult"]`` (parameter-name prefix -> learning-rate multiplier,
# longest prefix wins), ``extra["phases"]`` (consecutive stages, each
# overriding recipe fields, with ``trainable`` parameter-name prefixes) and
# ``extra["steps_per_epoch"]`` (a cap on the batches of one epoch) are read by
# the generic trainer, iqabench.models.training; ``extra["source"]`` says where the
# numbers come from.
#: BAIQA appendix (REFERENCES.md section 2): crops 224, 25 patches, batch 32
_BAIQA = "BAIQA (Yu et al., AAAI 2025) appendix victim recipe"

#: where the BAIQA release (``yuyi-sd/BAIQA``), which produced the published
#: numbers, trains differently from its appendix.  Not reproduced (no
#: ``release`` recipe): the differences are accidents of its code, and a
#: faithful copy would also need its surrogate (see ``iqabench_plugins.backdoor.baiqa``).
_HYPERIQA_RELEASE = (
    "; the release (HyperIQASolver_benign/_multi_v6/_multi_cl_v3.py) differs: it re-creates Adam after every "
    "epoch from self.hypernet_params, a filter iterator that the first Adam consumed, so from epoch 2 on "
    "the optimizer holds the backbone group only -- the hyper network trains in epoch 1 only, the backbone "
    "at a constant 2e-5 (its group never decays; only the empty hyper group gets lr/10 every 8 epochs), and "
    "Adam's moments restart every epoch. Followed here: its backbone group (self.res, as in HyperIQA's own "
    "code) also holds the local-distortion-aware (LDA) layers, at 1 x lr; the hyper network at 10 x lr is "
    "the rest"
)
HYPERIQA_PAPER = TrainRecipe(
    epochs=24, lr=2e-5, batch_size=32, crop=224, patches_per_image=25, loss="l1", optimizer="adam",
    weight_decay=5e-4, lr_step=8, hflip=True,
    # backbone (ResNet + LDA layers, HyperIQA's self.res) at lr, the hyper network (everything else) at 10 x lr
    extra={"lr_mult": {"": 10.0, "net.base_model.": 1.0, "net.lda_modules.": 1.0},
           "source": _BAIQA + _HYPERIQA_RELEASE},
)
DBCNN_PAPER = TrainRecipe(
    epochs=16, lr=1e-5, batch_size=32, crop=224, patches_per_image=25, loss="mse", optimizer="adam",
    weight_decay=5e-4, lr_step=0, hflip=True,
    extra={"phases": [
        {"epochs": 8, "optimizer": "sgd", "lr": 1e-3, "trainable": ["net.fc."]},
        {"epochs": 8, "optimizer": "adam", "lr": 1e-5, "trainable": [""]},
    ], "momentum": 0.9, "source": _BAIQA + "; the release (DBCNNSolver_*.py: SGD lr 1e-3 momentum 0.9 wd 5e-4 "
                                        "on fc for epochs // 2, then Adam 0.01 x 1e-3 wd 5e-4) trains the same"},
)
TRES_PAPER = TrainRecipe(
    epochs=12, lr=2e-5, batch_size=32, crop=224, patches_per_image=25, loss="l1", optimizer="adam",
    weight_decay=5e-4, lr_step=4, hflip=True,
    extra={"source": _BAIQA + " (the paper's TReS used network=resnet18); the release (DBCNNSolver_*.py, Net() "
                              "= TReS on ResNet-18, L1) creates StepLR(step_size=4, gamma=0.1) but steps it for "
                              "MANIQA only, so its TReS trains at a constant 2e-5 for all 12 epochs"},
)
#: models the BAIQA appendix does not cover get the TReS-style fine-tuning
#: recipe, and say so: their papers' schedules (cosine / EMD loss /
#: per-layer rates) are not reproduced here
GENERIC_PAPER = TrainRecipe(
    epochs=12, lr=2e-5, batch_size=32, crop=224, patches_per_image=25, loss="l1", optimizer="adam",
    weight_decay=5e-4, lr_step=4, hflip=True,
    extra={"source": "iqabench generic fine-tuning recipe (not from this model's paper)"},
)


#: quick profile: at most this many batches of 8 crops per epoch, so that it
#: takes minutes on a CPU whatever the dataset size (embedded: 1248 images)
QUICK_STEPS_PER_EPOCH = 12


def quick(recipe: TrainRecipe, crop: int, epochs: int = 2, lr: float | None = None) -> TrainRecipe:
    """A CPU smoke-test version of ``recipe``: two epochs of at most 12
    batches of 8 crops, one patch per image, smaller crops (at most 192 px, so
    that they fit the embedded dataset's 192 px images; fixed-input networks
    resize them to their input size), phases shortened to one epoch each."""
    extra = dict(recipe.extra)
    if "phases" in extra:
        extra["phases"] = [{**ph, "epochs": 1} for ph in extra["phases"]]
        epochs = len(extra["phases"])
    extra["steps_per_epoch"] = QUICK_STEPS_PER_EPOCH
    extra["source"] = f"quick CPU profile of: {recipe.extra.get('source', 'the paper recipe')}"
    return replace(recipe, epochs=epochs, crop=crop, patches_per_image=1, batch_size=8,
                   lr=lr if lr is not None else recipe.lr * 5, lr_step=0, extra=extra)


# -------------------------------------------------------------------- table ---
@dataclass(frozen=True)
class Param:
    """An architecture parameter beyond the crop policy."""

    name: str
    type: Any
    default: Any


@dataclass(frozen=True)
class ZooSpec:
    name: str
    cls_name: str
    description: str
    nominal_range: tuple[float, float]
    lower_better: bool = False
    #: pyiqa's default checkpoint (file name in pyiqa's cache), if any
    checkpoint: str | None = None
    #: parameter values the checkpoint was trained with (else: no default weights)
    checkpoint_params: dict[str, Any] = field(default_factory=dict)
    #: default side of the eval crops (0: whole image)
    crop_size: int = 224
    #: fixed network input side (crops are resized to it), None: any size
    native_size: int | None = None
    min_size: int = 32
    params: tuple[Param, ...] = ()
    #: (offset, scale) of the output affine for random init; None: no affine
    affine: tuple[float, float] | None = (50.0, 25.0)
    recipes: dict[str, TrainRecipe] | None = None
    #: why the model has no recipe (when ``recipes`` is None)
    untrainable: str = ""
    #: prefix that pyiqa-layout checkpoints need in our state dict
    foreign_prefix: str = "net."
    #: per-channel (mean, std) the network normalises its input with, when it
    #: keeps no ``default_mean`` / ``default_std`` (see ZooModel.input_normalisation)
    input_norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None


def _recipes(paper: TrainRecipe, quick_crop: int) -> dict[str, TrainRecipe]:
    return {"paper": paper, "default": paper, "quick": quick(paper, quick_crop)}


ZOO: tuple[ZooSpec, ...] = (
    ZooSpec("hyperiqa", "HyperIQA", "HyperIQA (Su et al., CVPR 2020): ResNet-50 + self-adaptive hyper network",
            (0.0, 1.0), checkpoint="HyperIQA-resnet50-koniq10k-c96c41b1.pth", native_size=224,
            recipes=_recipes(HYPERIQA_PAPER, 192)),
    ZooSpec("dbcnn", "DBCNN", "DBCNN (Zhang et al., TCSVT 2020): VGG-16 + SCNN bilinear pooling",
            (0.0, 1.0), checkpoint="DBCNN_KonIQ10k-2de81c0a.pth", recipes=_recipes(DBCNN_PAPER, 128)),
    ZooSpec("tres", "TReS", "TReS (Golestaneh et al., WACV 2022): ResNet + transformer, relative ranking",
            (0.0, 100.0), checkpoint="tres_koniq-f0502926.pth", checkpoint_params={"network": "resnet50"},
            native_size=224, params=(Param("network", Literal["resnet50", "resnet34", "resnet18"], "resnet50"),),
            recipes=_recipes(TRES_PAPER, 192)),
    ZooSpec("maniqa", "MANIQA", "MANIQA (Yang et al., CVPRW 2022): ViT-B/8 + transposed attention + Swin",
            (0.0, 1.0), checkpoint="ckpt_koniq10k.pt", native_size=224, affine=(0.0, 100.0),
            recipes=_recipes(GENERIC_PAPER, 192)),
    ZooSpec("musiq", "MUSIQ", "MUSIQ (Ke et al., ICCV 2021): multi-scale image quality transformer",
            (0.0, 100.0), checkpoint="musiq_koniq_ckpt-e95806b9.pth", recipes=_recipes(GENERIC_PAPER, 128),
            input_norm=((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))),  # pyiqa: (x - 0.5) * 2
    ZooSpec("topiq_nr", "TOPIQNR", "TOPIQ-NR (Chen et al., TIP 2024): top-down semantic attention, ResNet-50",
            (0.0, 1.0), checkpoint="cfanet_nr_koniq_res50-9a73138b.pth", recipes=_recipes(GENERIC_PAPER, 128)),
    ZooSpec("nima", "NIMA", "NIMA (Talebi & Milanfar, TIP 2018): Inception-ResNet-v2, 10-bin score distribution",
            (1.0, 10.0), checkpoint="NIMA_InceptionV2_ava-b0c77c00.pth", affine=(-100.0 / 9, 100.0 / 9),
            recipes=_recipes(GENERIC_PAPER, 128)),
    ZooSpec("clipiqa", "CLIPIQA", "CLIP-IQA (Wang et al., AAAI 2023): zero-shot CLIP RN50 antonym prompts",
            (0.0, 1.0), affine=None, foreign_prefix="net.clip.",
            untrainable="CLIP-IQA is zero-shot: pyiqa's 'clipiqa' has no trainable parameters (CLIP is frozen)"),
    ZooSpec("niqe", "NIQE", "NIQE (Mittal et al., SPL 2013): distance to a pristine MVG, lower is better",
            (0.0, 100.0), lower_better=True, crop_size=0, min_size=96, affine=None, foreign_prefix="net.",
            untrainable="NIQE is opinion-unaware: its pristine model is fitted, not trained (see the adversarial niqe module)"),
    ZooSpec("brisque", "BRISQUE", "BRISQUE (Mittal et al., TIP 2012): NSS features + RBF SVR, lower is better",
            (0.0, 150.0), lower_better=True, crop_size=0, affine=None, foreign_prefix="net.",
            untrainable="BRISQUE's SVR is fitted in closed form, not trained by gradient descent"),
)


# ------------------------------------------------------------- crop policy ---
def crop_positions(length: int, size: int, count: int) -> list[int]:
    """``count`` evenly spaced starts of a ``size`` window in ``length`` (one: centred)."""
    if count == 1:
        return [(length - size) // 2]
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


def grid_crops(x: torch.Tensor, size: int, crops: int) -> torch.Tensor:
    """B x 3 x H x W -> (B * crops) x 3 x size x size, image-major."""
    b, c, h, w = x.shape
    if min(h, w) < size:
        short = min(h, w)
        x = F.interpolate(x, size=(max(size, round(h * size / short)), max(size, round(w * size / short))),
                          mode="bilinear", align_corners=False)
        h, w = x.shape[-2:]
    g = math.ceil(math.sqrt(crops))
    spots = [(t, l) for t in crop_positions(h, size, g) for l in crop_positions(w, size, g)][:crops]
    out = torch.stack([x[..., t : t + size, l : l + size] for t, l in spots], dim=1)
    return out.reshape(b * crops, c, size, size)


# --------------------------------------------------------------- the model ---
class ZooModel(IQAModel):
    """Base of every zoo model; subclasses are generated from :data:`ZOO`."""

    spec: ClassVar[ZooSpec]
    nominal_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    native_size: ClassVar[int | None] = None

    def __init__(self, crops: int = 1, crop_size: int = 224, **arch_params: Any) -> None:
        super().__init__()
        spec = self.spec
        if crops < 1:
            raise ParameterError(f"model {spec.name!r} parameter 'crops' must be >= 1, got {crops}")
        if crop_size < 0 or (0 < crop_size < spec.min_size):
            raise ParameterError(
                f"model {spec.name!r} parameter 'crop_size' must be 0 (whole image) or >= {spec.min_size}, got {crop_size}")
        if crops > 1 and crop_size == 0:
            raise ParameterError(f"model {spec.name!r}: crops={crops} needs a crop_size > 0")
        self.crops, self.crop_size = crops, crop_size
        self.arch_params = dict(arch_params)
        for key, value in arch_params.items():
            setattr(self, key, value)
        self.min_size = spec.min_size
        self.net, self.skipped_downloads = self._build_core()
        if spec.affine is not None:
            self.register_buffer("out_offset", torch.tensor(float(spec.affine[0])))
            self.register_buffer("out_scale", torch.tensor(float(spec.affine[1])))

    # --- construction -------------------------------------------------------
    def _build_core(self) -> tuple[nn.Module, list[str]]:
        return archs.ARCHS[self.spec.name].build(self.arch_params)

    def _raw(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        return archs.ARCHS[self.spec.name].score(self.net, x, training)

    # --- scoring ------------------------------------------------------------
    def fit_input(self, x: torch.Tensor) -> torch.Tensor:
        n = self.native_size
        if n is not None and tuple(x.shape[-2:]) != (n, n):
            x = F.interpolate(x, size=(n, n), mode="bilinear", align_corners=False,
                              antialias=bool(min(x.shape[-2:]) > n))
        return x

    def _affine(self, raw: torch.Tensor) -> torch.Tensor:
        if self.spec.affine is None:
            return raw
        return self.out_offset + self.out_scale * raw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        b = x.shape[0]
        if self.crop_size == 0:
            crops, n = x, 1
        else:
            crops, n = grid_crops(x, self.crop_size, self.crops), self.crops
        scores = self._affine(self._raw(self.fit_input(crops), False))
        return scores.reshape(b, n).mean(dim=1)

    def training_forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self._affine(self._raw(self.fit_input(crops), True)).reshape(-1)

    def feature_layer(self) -> nn.Module:
        """The architecture's feature extractor output (e.g. ResNet-50 ``layer4``:
        after its last shortcut add and ReLU), see :data:`archs.ARCHS`."""
        arch = archs.ARCHS.get(self.spec.name)
        if arch is None or arch.features is None:
            return super().feature_layer()
        return self.net.get_submodule(arch.features)

    def input_normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The spec's, else the network's own ``default_mean`` / ``default_std``
        (pyiqa's convention, which its forward applies), else the identity."""
        if self.spec.input_norm is not None:
            return self.spec.input_norm
        mean, std = getattr(self.net, "default_mean", None), getattr(self.net, "default_std", None)
        if mean is None or std is None:
            return super().input_normalisation()
        return tuple(float(v) for v in mean.flatten()), tuple(float(v) for v in std.flatten())

    # --- training -------------------------------------------------------------
    def recipe(self, profile: str = "default") -> TrainRecipe:
        return self.recipe_for(profile)

    @classmethod
    def recipe_for(cls, profile: str = "default") -> TrainRecipe:
        """The recipe, without building the network (a fresh copy)."""
        spec = cls.spec
        if spec.recipes is None:
            raise ModelError(f"model {spec.name!r} cannot be trained: {spec.untrainable}")
        if profile not in spec.recipes:
            raise ModelError(f"model {spec.name!r} has no recipe {profile!r} (recipes: {', '.join(spec.recipes)})")
        r = spec.recipes[profile]
        return replace(r, extra={k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                                 for k, v in r.extra.items()})

    # --- weights --------------------------------------------------------------
    @classmethod
    def remote_files(cls, params: dict[str, Any] | None = None) -> list:
        """pyiqa's checkpoint and the training recipes' backbones (:mod:`.weights`)."""
        return weights.remote_files(cls.spec, params)

    def load_backbone(self) -> str | None:
        return weights.load_backbone(self)

    def pretrained_weights(self) -> Path | None:
        spec = self.spec
        if spec.checkpoint is None:
            return None
        if any(self.arch_params.get(k) != v for k, v in spec.checkpoint_params.items()):
            return None  # pyiqa's checkpoint is for another variant
        return pyiqa_cache_file(spec.checkpoint)

    def _foreign(self, state: dict) -> dict:
        """A pyiqa-layout state dict in our key layout."""
        return {self.spec.foreign_prefix + k: v for k, v in state.items()}

    def load_model_state(self, state: dict) -> None:
        state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
        own = self.state_dict()
        if not any(k in own for k in state):
            state = self._foreign(state)
            if self.spec.affine is not None:  # pyiqa's own scale
                state.setdefault("out_offset", torch.tensor(0.0))
                state.setdefault("out_scale", torch.tensor(1.0))
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or wrong:
            raise ModelError(
                f"model {self.spec.name!r}: weights do not match the architecture "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})")
        self.load_state_dict({k: state[k] for k in own}, strict=True)


# -------------------------------------------------- CLIP-IQA: OpenAI's file ---
#: sha256 of OpenAI's RN50 CLIP archive (it is the URL's path component)
CLIP_RN50_SHA256 = "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"


def converted(source: Path, tag: str, convert: Callable[[Path], dict[str, torch.Tensor]]) -> Path:
    """``source`` converted once to safetensors in the artifact cache."""
    from iqabench.artifacts import cache_dir, config_key, save_state

    st = source.stat()
    key = config_key({"source": str(source.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns, "tag": tag})
    out = cache_dir("zoo", "converted") / f"{tag}-{key}.safetensors"
    if not out.exists():
        save_state(out, convert(source), metadata={"source": str(source), "converted_by": "iqabench zoo"})
    return out


def convert_clip_archive(path: Path) -> dict[str, torch.Tensor]:
    """OpenAI's RN50 TorchScript archive -> CLIP state dict.  The file is
    loaded only when its sha256 is the official one (TorchScript, not a
    Python pickle, but still: only the published bytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != CLIP_RN50_SHA256:
        raise WeightsError(f"{path}: not OpenAI's RN50 CLIP archive (sha256 {h.hexdigest()[:16]}...); refused")
    archive = torch.jit.load(str(path), map_location="cpu")
    skip = {"input_resolution", "context_length", "vocab_size"}
    return {k: v.float() for k, v in archive.state_dict().items() if k not in skip}


class _CLIPIQA(ZooModel):
    @classmethod
    def remote_files(cls, params: dict[str, Any] | None = None) -> list:
        from iqabench.downloads import RemoteFile

        return [RemoteFile(weights.CLIP_RN50_URL, torch_hub_dir() / "clip" / "RN50.pt", CLIP_RN50_SHA256)]

    def pretrained_weights(self) -> Path | None:
        path = torch_hub_dir() / "clip" / "RN50.pt"
        return converted(path, "clip-rn50", convert_clip_archive) if path.is_file() else None


# ------------------------------------------------------ classical models ---
class _NIQE(ZooModel):
    def _build_core(self) -> tuple[nn.Module, list[str]]:
        return classical.NIQECore(), []

    def _raw(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        return self.net(x)

    def pretrained_weights(self) -> Path | None:
        """The pristine model AMI-FGSM's NIQE uses: the published parameters
        when pyiqa's file is on disk, else the fit on the embedded dataset's
        pristine train crops (cached safetensors)."""
        from iqabench_plugins.adversarial.niqe import niqe_model

        source = niqe_model().path
        if source.suffix == ".safetensors":
            return source
        return converted(source, "niqe-published", classical.convert_niqe_mat)


class _BRISQUE(ZooModel):
    @classmethod
    def remote_files(cls, params: dict[str, Any] | None = None) -> list:
        """pyiqa's published SVR, unless ``$IQABENCH_BRISQUE_PARAMS`` names one."""
        return [] if os.environ.get("IQABENCH_BRISQUE_PARAMS") else [weights.pyiqa_file("brisque_svm_weights.pth")]

    def _build_core(self) -> tuple[nn.Module, list[str]]:
        return classical.BRISQUECore(), []

    def _raw(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        return self.net(x)

    def pretrained_weights(self) -> Path | None:
        """pyiqa's published SVR (``brisque_svm_weights.pth``) from
        ``$IQABENCH_BRISQUE_PARAMS`` or pyiqa's cache (fetched there on first
        use, :meth:`remote_files`)."""
        env = os.environ.get("IQABENCH_BRISQUE_PARAMS")
        source = Path(env).expanduser() if env else pyiqa_cache_file("brisque_svm_weights.pth")
        if source is None or not source.is_file():
            return None
        return converted(source, "brisque-published", classical.convert_brisque_pth)

    def load_model_state(self, state: dict) -> None:
        """The SVR's size comes from the file (the published one has 774 SVs)."""
        state = {(k[4:] if k.startswith("net.") else k): v for k, v in state.items()}
        need = ("sv", "sv_coef", "rho", "gamma")
        if any(k not in state for k in need) or set(state) - set(need):
            raise ModelError(f"model 'brisque': weights need exactly {', '.join(need)}, got {sorted(state)[:6]}")
        sv, coef = state["sv"].float(), state["sv_coef"].float().reshape(-1)
        if sv.ndim != 2 or sv.shape[1] != classical.BRISQUE_FEATURES or sv.shape[0] != coef.shape[0]:
            raise ModelError(f"model 'brisque': sv must be N x 36 and sv_coef N, got {tuple(sv.shape)} and {tuple(coef.shape)}")
        self.net.sv, self.net.sv_coef = sv, coef
        self.net.rho, self.net.gamma = state["rho"].float().reshape(()), state["gamma"].float().reshape(())


_BASES: dict[str, type[ZooModel]] = {"clipiqa": _CLIPIQA, "niqe": _NIQE, "brisque": _BRISQUE}


# -------------------------------------------------------- class generation ---
def _make_class(spec: ZooSpec) -> type[ZooModel]:
    """A ZooModel subclass whose constructor signature carries the typed
    parameters (``crops``, ``crop_size`` with this model's default, extras)."""
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD),
              P("crops", P.KEYWORD_ONLY, default=1, annotation=int),
              P("crop_size", P.KEYWORD_ONLY, default=spec.crop_size, annotation=int)]
    params += [P(p.name, P.KEYWORD_ONLY, default=p.default, annotation=p.type) for p in spec.params]
    signature = inspect.Signature(params)
    base = _BASES.get(spec.name, ZooModel)

    def __init__(self, **kwargs: Any) -> None:
        bound = signature.bind(self, **kwargs)
        bound.apply_defaults()
        args = dict(bound.arguments)
        args.pop("self")
        base.__init__(self, **args)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__annotations__ = {p.name: p.annotation for p in params[1:]}
    __init__.__qualname__ = f"{spec.cls_name}.__init__"
    doc = f"{spec.description}.\n\nGenerated from the zoo table; see :mod:`{__name__}`."
    return type(spec.cls_name, (base,), {
        "__init__": __init__, "__doc__": doc, "__module__": __name__, "__qualname__": spec.cls_name,
        "spec": spec, "name": spec.name, "description": spec.description, "lower_better": spec.lower_better,
        "nominal_range": spec.nominal_range, "native_size": spec.native_size, "min_size": spec.min_size,
        "citation": bib.ZOO[spec.name],
    })


ZOO_MODELS: tuple[type[ZooModel], ...] = tuple(_make_class(s) for s in ZOO)
globals().update({cls.__name__: cls for cls in ZOO_MODELS})
__all__ = ["ZOO", "ZOO_MODELS", "ZooModel", "ZooSpec", *(cls.__name__ for cls in ZOO_MODELS)]
