"""The model contract: an IQA model, its training recipe and its feature layer."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..downloads import RemoteFile
from ..errors import DatasetError, ModelError


@dataclass
class TrainRecipe:
    """How a model is trained: what an unsuspecting trainer would use.

    ``crop`` is the side of the random training crops, ``patches_per_image``
    how many crops of each image one epoch sees (the paper recipes use 25).
    ``threads`` is the number of CPU threads training runs on
    (:func:`iqabench.models.training.train_model` sets it, then restores the
    caller's): multi-threaded CPU kernels split their reductions by thread
    count, so the same seed gives bit-identical weights only at the same
    count.  It is part of the recipe -- hence of every trained artifact's key
    and model card -- and 1 by default, the one count every machine can run
    without oversubscribing its cores; a larger count trains faster on a
    multi-core machine and is just as reproducible there (other keys).
    """

    epochs: int
    lr: float
    batch_size: int
    crop: int
    patches_per_image: int = 1
    loss: str = "l1"  # "l1" | "mse"
    optimizer: str = "adam"  # "adam" | "sgd"
    weight_decay: float = 0.0
    lr_step: int = 0  # divide lr by 10 every lr_step epochs (0: never)
    hflip: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    threads: int = 1


class IQAModel(nn.Module):
    """A no-reference IQA model: RGB in [0,1], Bx3xHxW -> one score per image.

    Subclasses set ``name``, ``lower_better`` and implement ``forward``.  The
    harness records after loading where the weights came from -- ``weights``:
    "<file> (sha256:<digest>)", "random-init (seed N)" or the model's
    ``provenance`` -- and ``score_range``, the model's FIXED clean score range
    used to normalise every robustness score (set it in ``__init__`` when it
    is known, e.g. an analytic score on a fixed scale; a model card's wins).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    lower_better: ClassVar[bool] = False
    #: smallest input side the model accepts
    min_size: ClassVar[int] = 32
    #: what an analytic model without learned weights is (e.g. "analytic (mean
    #: luma gradient)"): recorded as its weights -- in cell keys, manifests and
    #: the board -- instead of "random-init (seed N)" when no weights file is loaded
    provenance: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self.weights: str = "random-init"
        self.score_range: tuple[float, float] | None = None
        self._feature_mask_hook: "torch.utils.hooks.RemovableHandle | None" = None

    # --- weights ----------------------------------------------------------
    def pretrained_weights(self) -> "Path | None":
        """A local file with this model's pretrained weights, or None.

        A ``<stem>.card.json`` beside the file (same stem as the weights, see
        :func:`iqabench.models.build.card_path`) supplies the model card, notably
        its clean ``score_range``.  Never downloads anything: the harness
        fetches the model's :meth:`remote_files` before asking.
        """
        return None

    @classmethod
    def remote_files(cls, params: "dict[str, Any] | None" = None) -> "list[RemoteFile]":
        """The published files this model (with constructor ``params``) fetches
        on first use: its own checkpoint (role ``"weights"``) and the ImageNet
        backbone its training recipes start from (role ``"backbone"``).
        ``iqabench fetch`` downloads them (:func:`iqabench.downloads.ensure`).
        Default: none."""
        return []

    def load_backbone(self) -> "str | None":
        """Load the pretrained backbone the training recipes start from into
        the freshly initialised network, and say what it was
        (``"imagenet (<file>, sha256:<digest>)"``); None when the model has
        no pretrained backbone.  Raises :class:`~iqabench.errors.WeightsUnavailable`
        when it has one that cannot be had (offline and not cached):
        :func:`iqabench.models.build.training_start` then trains from random
        initialisation and says so."""
        return None

    def load_weights(self, state: dict) -> None:
        """Load a state dict (already read safely).

        The harness's own state travels in the same file under reserved keys
        (a pruning defence's channel mask, see :meth:`set_feature_mask`): it
        is split off here, the rest goes to :meth:`load_model_state`, and the
        mask is re-installed afterwards.  Override ``load_model_state`` (not
        this method) to remap a model's keys.
        """
        state = dict(state)
        self.set_feature_mask(None)
        masks = [k for k in state if k == FEATURE_MASK or k.endswith("." + FEATURE_MASK)]
        mask = {k: state.pop(k) for k in masks}
        self.load_model_state(state)
        if not mask:
            return
        layer = self._module_name(self.feature_layer())
        want = f"{layer}.{FEATURE_MASK}" if layer else FEATURE_MASK
        if list(mask) != [want]:
            raise ModelError(f"model {self.name!r}: the weights carry a feature mask for {sorted(mask)}, "
                             f"but the model's feature layer is {layer or 'the model itself'!r}")
        self.set_feature_mask(mask[want])

    def load_model_state(self, state: dict) -> None:
        """Load the model's own state dict; override to remap keys (checked strictly)."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(
                f"model {self.name!r}: weights do not match the architecture "
                f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})"
            )

    # --- input space ------------------------------------------------------
    def input_normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel ``(mean, std)`` the model applies to its [0,1] RGB input
        before its first learned layer: it computes on ``(x - mean) / std``.

        Default: the identity -- the model sees [0,1] pixels.  Models that
        normalise internally (pyiqa's networks: ImageNet mean/std) declare it,
        because defences that act in the model's input space must know it:
        NT's finite-difference step ``h`` and weight ``lambda`` are defined on
        the normalised input (``iqabench_plugins.defenses.nt``).
        """
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    # --- training ---------------------------------------------------------
    def recipe(self, profile: str = "default") -> TrainRecipe:
        raise ModelError(f"model {self.name!r} has no training recipe")

    def training_forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Scores for a batch of training crops (defaults to ``forward``)."""
        return self(crops)

    # --- features -----------------------------------------------------------
    def feature_layer(self) -> nn.Module:
        """The module whose output is the feature extractor's output: what the
        model's head consumes, channels on dim 1 (pruning defences cut them).

        It is the last module before the head, after any normalisation,
        nonlinearity or shortcut that follows the last convolution -- a
        ResNet's ``layer4`` (its last block's shortcut add and ReLU), the
        ``nn.ReLU`` after a conv + batch norm -- because a channel is only
        removed where nothing downstream can revive it.
        Default: the last ``nn.Conv2d`` (in module order) whose kernel is
        larger than 1x1 (in fully convolutional models 1x1 convolutions are
        usually the head); right for a model that consumes that conv's raw
        output (cnniqa pools it) or applies only a functional ReLU to it
        (relu(0) = 0).  Models whose extractor ends otherwise override this.
        """
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        spatial = [m for m in convs if max(m.kernel_size) > 1]
        if not (spatial or convs):
            raise ModelError(f"model {self.name!r} has no convolution layer to prune")
        return (spatial or convs)[-1]

    def set_feature_mask(self, mask: "torch.Tensor | None") -> None:
        """Multiply :meth:`feature_layer`'s output by ``mask`` per channel (1 keeps,
        0 removes a channel); ``None`` removes the mask.

        The mask is a persistent buffer of the feature layer, so it is in
        :meth:`state_dict` under ``<layer>.iqabench_feature_mask`` (moved by
        ``.to()``, saved with the weights) and :meth:`load_weights` installs it
        again.  A mask on the output -- not zeroed filters -- silences a
        channel even where an identity shortcut would carry it around them.
        """
        if self._feature_mask_hook is not None:
            self._feature_mask_hook.remove()
            self._feature_mask_hook = None
        for module in self.modules():
            module._buffers.pop(FEATURE_MASK, None)
        if mask is None:
            return
        layer = self.feature_layer()
        device = next((t.device for t in (*self.parameters(), *self.buffers())), torch.device("cpu"))
        layer.register_buffer(FEATURE_MASK, torch.as_tensor(mask).detach().flatten().float().to(device))
        self._feature_mask_hook = layer.register_forward_hook(_apply_feature_mask)

    def feature_mask(self) -> "torch.Tensor | None":
        """The mask :meth:`set_feature_mask` installed, or None."""
        return next((m._buffers[FEATURE_MASK] for m in self.modules() if FEATURE_MASK in m._buffers), None)

    def _module_name(self, module: nn.Module) -> str:
        for name, m in self.named_modules():
            if m is module:
                return name
        raise ModelError(f"model {self.name!r}: its feature layer is not one of its modules")

    @property
    def direction(self) -> float:
        """+1 when a higher score is better, -1 when lower is better."""
        return -1.0 if self.lower_better else 1.0

    def require_size(self, img: torch.Tensor, where: str) -> None:
        """Refuse an image smaller than the model's input, naming it (``where``)."""
        h, w = img.shape[-2:]
        if min(h, w) < self.min_size:
            raise DatasetError(f"{where} is {w}x{h}, smaller than the minimum input "
                               f"{self.min_size}x{self.min_size} of model {self.name!r}")

    def check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ModelError(f"model {self.name!r} expects Bx3xHxW RGB, got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.min_size:
            raise ModelError(
                f"model {self.name!r} needs images of at least {self.min_size}x{self.min_size}, "
                f"got {x.shape[-1]}x{x.shape[-2]}"
            )


#: reserved state-dict key (last component) of the channel mask a pruning defence installs
FEATURE_MASK = "iqabench_feature_mask"


def _apply_feature_mask(module: nn.Module, _inputs, out: torch.Tensor) -> torch.Tensor:
    """Forward hook of :meth:`IQAModel.set_feature_mask`: ``out`` times the module's mask on dim 1."""
    mask = module._buffers[FEATURE_MASK]
    if out.ndim < 2 or out.shape[1] != mask.numel():
        raise ModelError(f"feature mask of {mask.numel()} channels does not fit an output of shape {tuple(out.shape)}")
    return out * mask.to(out.dtype).view(1, -1, *([1] * (out.ndim - 2)))

