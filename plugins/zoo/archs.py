"""The pyiqa architectures behind the zoo, built offline, and their cores.

Each entry of :data:`ARCHS` builds one network (random initialisation, no
download: :func:`offline_construction`) and scores a batch of crops that the
zoo wrapper has already cut to the network's input size.  The wrapper owns
the crop policy, so every core bypasses pyiqa's own test-time cropping
(``uniform_crop`` rescales a 224 px crop to 225 px before cropping it back)
and returns one raw score per crop, differentiable with respect to the
pixels.  Imports of pyiqa happen here, inside the builders, never at plugin
import time.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from iqabench.errors import ModelError

from .offline import import_pyiqa_module, offline_construction


@dataclass(frozen=True)
class Arch:
    """How to build one network and score crops with it."""

    build: Callable[[dict[str, Any]], tuple[nn.Module, list[str]]]
    #: raw scores (N) of crops (N x 3 x s x s in [0,1]); ``training`` tells
    #: the core whether it is called by the trainer
    score: Callable[[nn.Module, torch.Tensor, bool], torch.Tensor]
    #: the submodule of ``net`` whose output is the feature extractor's output
    #: -- what the head consumes, after a ResNet's last shortcut add and ReLU;
    #: pruning defences mask its channels (None: the IQAModel default)
    features: str | None = None


def _build(module: str, cls: str, **kwargs: Any) -> tuple[nn.Module, list[str]]:
    with offline_construction(module) as skipped:
        net = getattr(import_pyiqa_module(module), cls)(**kwargs)
    return net, list(skipped)


# ---------------------------------------------------------------- HyperIQA ---
def _hyperiqa_build(p: dict) -> tuple[nn.Module, list[str]]:
    return _build("pyiqa.archs.hypernet_arch", "HyperNet", base_model_name="resnet50", num_crop=1,
                  pretrained=False, pretrained_model_path=None)


def _hyperiqa_score(net: nn.Module, x: torch.Tensor, training: bool) -> torch.Tensor:
    return net.forward_patch(x).reshape(-1)


# ------------------------------------------------------------------- DBCNN ---
def _dbcnn_build(p: dict) -> tuple[nn.Module, list[str]]:
    net, skipped = _build("pyiqa.archs.dbcnn_arch", "DBCNN", fc=True, use_bn=True, pretrained=False,
                          pretrained_model_path=None)
    # pyiqa freezes both branches for its fc-only phase; the recipe decides
    # what trains (TrainRecipe.extra["phases"]), so the module starts plain.
    net.requires_grad_(True)
    return net, skipped


def _plain_score(net: nn.Module, x: torch.Tensor, training: bool) -> torch.Tensor:
    return net(x).reshape(-1)


# -------------------------------------------------------------------- TReS ---
def _tres_build(p: dict) -> tuple[nn.Module, list[str]]:
    return _build("pyiqa.archs.tres_arch", "TReS", network=p["network"], test_sample=1, pretrained=False,
                  pretrained_model_path=None)


def _tres_score(net: nn.Module, x: torch.Tensor, training: bool) -> torch.Tensor:
    """pyiqa's ``TReS.forward`` without its crops and without the flipped
    second pass (it only feeds the training consistency loss, which the
    BAIQA recipe -- plain L1 -- does not use)."""
    x = (x - net.default_mean.to(x)) / net.default_std.to(x)
    pos = net.position_embedding(torch.ones(1, net.dim_modelt, 7, 7).to(x))
    pos = pos.repeat(x.shape[0], 1, 1, 1).contiguous()
    _, l1, l2, l3, l4 = net.forward_backbone(net.model, x)
    t1 = net.avg8(net.drop2d(net.L2pooling_l1(F.normalize(l1, dim=1, p=2))))
    t2 = net.avg4(net.drop2d(net.L2pooling_l2(F.normalize(l2, dim=1, p=2))))
    t3 = net.avg2(net.drop2d(net.L2pooling_l3(F.normalize(l3, dim=1, p=2))))
    t4 = net.drop2d(net.L2pooling_l4(F.normalize(l4, dim=1, p=2)))
    out_t = net.transformer(torch.cat((t1, t2, t3, t4), dim=1), pos)
    out_t = net.fc2(torch.flatten(net.avg7(out_t), start_dim=1))
    l4o = torch.flatten(net.avg7(l4), start_dim=1)
    return net.fc(torch.cat((out_t, l4o), dim=1)).reshape(-1)


# ------------------------------------------------------------------ MANIQA ---
def _maniqa_build(p: dict) -> tuple[nn.Module, list[str]]:
    # pyiqa's "maniqa" metric: KonIQ checkpoint, Swin scale 0.8
    return _build("pyiqa.archs.maniqa_arch", "MANIQA", train_dataset="koniq", scale=0.8, test_sample=1,
                  pretrained=False, pretrained_model_path=None)


def _maniqa_score(net: nn.Module, x: torch.Tensor, training: bool) -> torch.Tensor:
    """pyiqa's ``MANIQA.forward`` after its crop step (one crop per row)."""
    from einops import rearrange

    x = (x - net.default_mean.to(x)) / net.default_std.to(x)
    net.save_output.outputs.clear()
    net.vit(x)
    feats = net.extract_feature(net.save_output)
    net.save_output.outputs.clear()
    n = net.input_size
    x = rearrange(feats, "b (h w) c -> b c (h w)", h=n, w=n)
    for tab in net.tablock1:
        x = tab(x)
    x = rearrange(x, "b c (h w) -> b c h w", h=n, w=n)
    x = net.swintransformer1(net.conv1(x))
    x = rearrange(x, "b c h w -> b c (h w)", h=n, w=n)
    for tab in net.tablock2:
        x = tab(x)
    x = rearrange(x, "b c (h w) -> b c h w", h=n, w=n)
    x = net.swintransformer2(net.conv2(x))
    x = rearrange(x, "b c h w -> b (h w) c", h=n, w=n)
    score = net.fc_score(x).reshape(x.shape[0], -1)
    weight = net.fc_weight(x).reshape(x.shape[0], -1)
    return (weight * score).sum(dim=-1) / (weight.sum(dim=-1) + 1e-8)


# ------------------------------------------------------------------- MUSIQ ---
def _musiq_build(p: dict) -> tuple[nn.Module, list[str]]:
    # pyiqa's "musiq" metric: the KonIQ checkpoint, one output (not AVA's 10)
    return _build("pyiqa.archs.musiq_arch", "MUSIQ", num_class=1, pretrained=False, pretrained_model_path=None)


def _musiq_score(net: nn.Module, x: torch.Tensor, training: bool) -> torch.Tensor:
    if net.training:  # pyiqa's MUSIQ expects pre-patched input when training
        mod = import_pyiqa_module("pyiqa.data.multiscale_trans_util")
        x = mod.get_multiscale_patches((x - 0.5) * 2, **net.data_preprocess_opts)
    return net(x).reshape(-1)


# ------------------------------------------------------------ TOPIQ (NR) ---
def _topiq_build(p: dict) -> tuple[nn.Module, list[str]]:
    return _build("pyiqa.archs.topiq_arch", "CFANet", semantic_model_name="resnet50",
                  model_name="cfanet_nr_koniq_res50", use_ref=False, num_crop=1, pretrained=False,
                  pretrained_model_path=None)


# -------------------------------------------------------------------- NIMA ---
def _nima_build(p: dict) -> tuple[nn.Module, list[str]]:
    return _build("pyiqa.archs.nima_arch", "NIMA", base_model_name="inception_resnet_v2", train_dataset="ava",
                  num_classes=10, pretrained=False, pretrained_model_path=None)


# ----------------------------------------------------------------- CLIP-IQA ---
#: pyiqa's CLIPIQA prompt pairs (positive, negative)
CLIPIQA_PROMPTS = (
    "Good image", "bad image", "Sharp image", "blurry image", "sharp edges", "blurry edges",
    "High resolution image", "low resolution image", "Noise-free image", "noisy image",
)
#: OpenAI CLIP RN50, as ``clip_model.build_model`` infers it from the checkpoint
CLIP_RN50 = dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=512,
                 transformer_heads=8, transformer_layers=12)


def clip_tokenize(texts: tuple[str, ...], context_length: int = 77) -> torch.Tensor:
    """OpenAI CLIP's ``clip.tokenize``, loading only its tokenizer module.

    The installed ``clip`` package cannot be imported here (its
    ``__init__`` needs ``pkg_resources``), which is also why pyiqa's own
    ``clipiqa_arch`` does not import; the BPE tokenizer file itself is fine.
    """
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("model 'clipiqa' needs the OpenAI CLIP tokenizer (package 'clip', a pyiqa dependency)")
    path = Path(list(spec.submodule_search_locations)[0]) / "simple_tokenizer.py"
    loader = importlib.util.spec_from_file_location("_iqabench_clip_tokenizer", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    tok = module.SimpleTokenizer()
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
    out = torch.zeros(len(texts), context_length, dtype=torch.int)
    for i, text in enumerate(texts):
        ids = [sot] + tok.encode(text) + [eot]
        out[i, : len(ids)] = torch.tensor(ids[:context_length])
    return out


class CLIPIQACore(nn.Module):
    """pyiqa's CLIPIQA (``model_type="clipiqa"``, RN50, no positional
    embedding): softmax over each (positive, negative) prompt pair of the
    CLIP logits, probability of the positive prompt averaged over pairs.

    Unlike pyiqa, the CLIP weights are a registered submodule, so they are
    part of the state dict (saved, loaded, hashed)."""

    def __init__(self) -> None:
        super().__init__()
        mod = import_pyiqa_module("pyiqa.archs.clip_model")
        consts = import_pyiqa_module("pyiqa.archs.constants")
        self.clip = mod.CLIP(**CLIP_RN50).float()
        self.clip.requires_grad_(False)  # zero-shot: pyiqa freezes CLIP too
        self.register_buffer("tokens", clip_tokenize(CLIPIQA_PROMPTS), persistent=False)
        # pyiqa's names for the input normalisation (ZooModel.input_normalisation reads them)
        self.register_buffer("default_mean", torch.tensor(consts.OPENAI_CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("default_std", torch.tensor(consts.OPENAI_CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.default_mean) / self.default_std
        with torch.no_grad():  # text features do not depend on the image
            text = self.clip.encode_text(self.tokens)
        logits, _ = self.clip(x, None, pos_embedding=False, text_features=text)
        probs = logits.reshape(logits.shape[0], -1, 2).softmax(dim=-1)
        return probs[..., 0].mean(dim=1)


def _clipiqa_build(p: dict) -> tuple[nn.Module, list[str]]:
    return CLIPIQACore(), ["clip:RN50"]


def _clipiqa_score(net: nn.Module, x: torch.Tensor, training: bool) -> torch.Tensor:
    return net(x)


ARCHS: dict[str, Arch] = {
    # ResNet-50 ``layer4`` (timm's feature list / torchvision's): its output is the backbone's
    "hyperiqa": Arch(_hyperiqa_build, _hyperiqa_score, features="base_model.layer4"),
    # the VGG-16 branch (ends with a ReLU); DBCNN's bilinear pooling also reads the S-CNN branch
    "dbcnn": Arch(_dbcnn_build, _plain_score, features="features1"),
    "tres": Arch(_tres_build, _tres_score, features="model.layer4"),
    "maniqa": Arch(_maniqa_build, _maniqa_score),
    "musiq": Arch(_musiq_build, _musiq_score),
    "topiq_nr": Arch(_topiq_build, _plain_score, features="semantic_model.layer4"),
    # Inception-ResNet-v2's last conv block (conv + BN + ReLU), the last of timm's features
    "nima": Arch(_nima_build, _plain_score, features="base_model.conv2d_7b"),
    "clipiqa": Arch(_clipiqa_build, _clipiqa_score, features="clip.visual.layer4"),
}
