"""The published files of the zoo: pyiqa's checkpoints and the ImageNet backbones.

Each zoo model names its files as :class:`iqabench.downloads.RemoteFile` s
(:func:`remote_files`), which ``iqabench fetch`` and first use download:

* its **checkpoint**: the URL pyiqa itself uses (``get_url_from_name``:
  Hugging Face ``chaofengc/IQA-PyTorch-Weights``), saved where pyiqa keeps
  it (``<torch hub dir>/pyiqa/``, :func:`.offline.pyiqa_cache_dirs`);
* its **backbones** (:data:`BACKBONES`): the ImageNet checkpoint each
  training recipe starts from -- torchvision's files (their names carry a
  sha256 prefix, checked), saved where torchvision keeps them
  (``<torch hub dir>/checkpoints/``); timm's (MANIQA's ViT-B/8, NIMA's
  Inception-ResNet-v2) beside them -- and pyiqa's auxiliary networks
  (DBCNN's S-CNN branch).  MUSIQ has none (pyiqa trains it from scratch).

:func:`load_backbone` copies a backbone file into the freshly built network
(keys the network has, with equal shapes; the file's classifier is left out)
and returns its provenance.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iqabench.artifacts import load_state
from iqabench.downloads import RemoteFile, ensure, used_files
from iqabench.errors import ModelError

from .offline import pyiqa_cache_dirs, torch_hub_dir

if TYPE_CHECKING:
    from .models import ZooModel, ZooSpec

#: pyiqa's ``get_url_from_name`` (store ``hugging_face``)
PYIQA_URL = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/{}"
#: torchvision's (and torch.hub's) host of the ImageNet checkpoints
TORCHVISION_URL = "https://download.pytorch.org/models/{}"
#: timm's weights on the Hugging Face hub (``timm/<arch>.<tag>``)
TIMM_URL = "https://huggingface.co/timm/{}/resolve/main/model.safetensors"
#: OpenAI's RN50 CLIP archive; its path component is the file's sha256
CLIP_RN50_URL = ("https://openaipublic.azureedge.net/clip/models/"
                 "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt")


@dataclass(frozen=True)
class Backbone:
    """One pretrained part of a network: ``file`` initialises ``module`` (a
    submodule of ``ZooModel.net``); ``prefix`` is stripped from the file's keys."""

    file: str
    module: str
    prefix: str = ""
    url: str = TORCHVISION_URL
    source: str = ""

    def remote(self) -> RemoteFile:
        if self.url == PYIQA_URL:
            return pyiqa_file(self.file, role="backbone")
        return RemoteFile.hash_named(self.url.format(self.file), torch_hub_dir() / "checkpoints", name=self.file)


def timm_hub(model: str, module: str) -> Backbone:
    """timm's default ImageNet weights of ``model`` (``"<arch>.<tag>"``) on the
    Hugging Face hub, kept under ``<torch hub dir>/checkpoints/<arch>.<tag>.safetensors``
    (timm's own cache is Hugging Face's, whose layout needs the repository's
    revision)."""
    return Backbone(f"{model}.safetensors", module, url=TIMM_URL.format(model),
                    source=f"timm {model} (pyiqa builds it with pretrained=True)")


_RESNETS = {"resnet50": "resnet50-0676ba61.pth", "resnet34": "resnet34-b627a593.pth",
            "resnet18": "resnet18-f37072fd.pth"}

#: model name -> its backbones for the given constructor parameters
BACKBONES: dict[str, Any] = {
    # the BAIQA release's HyperIQA (models.py resnet50_backbone, as HyperIQA's own
    # code) loads this torchvision file; pyiqa's timm ResNet-50 has its key names
    "hyperiqa": lambda p: [Backbone("resnet50-19c8e357.pth", "base_model",
                                    source="BAIQA release / HyperIQA code: torchvision ResNet-50")],
    # pyiqa's DBCNN: torchvision VGG-16 (IMAGENET1K_V1) and its own S-CNN branch
    "dbcnn": lambda p: [Backbone("vgg16-397923af.pth", "features1", "features.", source="torchvision VGG-16"),
                        Backbone("DBCNN_scnn-7ea73d75.pth", "features2", "features.", PYIQA_URL,
                                 source="pyiqa's S-CNN (DBCNN branch pretrained on synthetic distortions)")],
    # pyiqa's TReS builds torchvision's ResNet with IMAGENET1K_V1
    "tres": lambda p: [Backbone(_RESNETS[p["network"]], "model", source=f"torchvision {p['network']}")],
    "topiq_nr": lambda p: [Backbone(_RESNETS["resnet50"], "semantic_model", source="torchvision ResNet-50")],
    # pyiqa's MANIQA and NIMA: timm's default ImageNet weights
    "maniqa": lambda p: [timm_hub("vit_base_patch8_224.augreg2_in21k_ft_in1k", "vit")],
    "nima": lambda p: [timm_hub("inception_resnet_v2.tf_in1k", "base_model")],
}


def pyiqa_file(name: str, role: str = "weights") -> RemoteFile:
    """A file pyiqa downloads, where pyiqa keeps it (first cache dir; the others searched)."""
    dirs = pyiqa_cache_dirs()
    return RemoteFile(PYIQA_URL.format(name), dirs[0] / name, role=role, search=tuple(dirs[1:]))


def full_params(spec: "ZooSpec", params: dict[str, Any] | None) -> dict[str, Any]:
    return {**{p.name: p.default for p in spec.params}, **(params or {})}


def checkpoint_file(spec: "ZooSpec", params: dict[str, Any] | None) -> RemoteFile | None:
    """pyiqa's checkpoint for these parameters (None: none published for them)."""
    p = full_params(spec, params)
    if spec.checkpoint is None or any(p.get(k) != v for k, v in spec.checkpoint_params.items()):
        return None
    return pyiqa_file(spec.checkpoint)


def remote_files(spec: "ZooSpec", params: dict[str, Any] | None) -> list[RemoteFile]:
    """The checkpoint (role ``weights``) and the backbones (role ``backbone``)."""
    own = checkpoint_file(spec, params)
    backbones = BACKBONES.get(spec.name, lambda p: [])(full_params(spec, params))
    return ([own] if own else []) + [b.remote() for b in backbones]


def load_backbone(model: "ZooModel") -> str | None:
    """Initialise ``model``'s backbones from their files (fetched on first use
    unless offline); their provenance, or None for a model without one."""
    spec = model.spec
    backbones = BACKBONES.get(spec.name, lambda p: [])(full_params(spec, model.arch_params))
    if not backbones:
        return None
    done = []
    for b in backbones:
        path = ensure(b.remote(), f"model {spec.name!r} (backbone {b.module})", f"iqabench fetch {spec.name} --backbones")
        copy_into(model.net.get_submodule(b.module), load_state(path), b.prefix, f"{path.name} -> {spec.name}.{b.module}")
        done.append(f"{path.name}, sha256:{used_files()[str(path.resolve())]}")
    return f"imagenet ({'; '.join(done)})"


def copy_into(module, state: dict, prefix: str, what: str) -> int:
    """Load the entries of ``state`` (``prefix`` stripped) that ``module`` has;
    every parameter and buffer of ``module`` must be covered (BatchNorm's
    ``num_batches_tracked``, which old torchvision files lack, excepted)."""
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if wrong or missing:
        raise ModelError(f"backbone {what}: the file does not fit (missing {missing[:3]}, wrong shape {wrong[:3]})")
    module.load_state_dict({**own, **{k: state[k] for k in own if k in state}}, strict=True)
    return len([k for k in own if k in state])


