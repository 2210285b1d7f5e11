"""The contracts plugins implement: models, datasets, attacks.

These base classes hold no concrete algorithm; they fix the shapes that the
runner, the store and the scores rely on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

import torch
from torch import nn

from .errors import DatasetError, ModelError, ParameterError


def check_positive(component: Any, *fields: str) -> None:
    """Refuse non-positive numeric parameters with an error naming them."""
    for f in fields:
        value = getattr(component, f)
        if not value > 0:
            raise ParameterError(f"{getattr(component, 'name', type(component).__name__)!r} parameter {f!r} must be > 0, got {value!r}")


# ----------------------------------------------------------------- models ---
@dataclass
class TrainRecipe:
    """How a model is trained: what an unsuspecting trainer would use.

    ``crop`` is the side of the random training crops, ``patches_per_image``
    how many crops of each image one epoch sees (the paper recipes use 25).
    ``threads`` is the number of CPU threads training runs on
    (:func:`iqabench.training.train_model` sets it, then restores the
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
    harness attaches provenance after loading: ``weights`` ("random-init",
    "pretrained:<file>", ...) and ``score_range``, the model's FIXED clean
    score range used to normalise every robustness score.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    lower_better: ClassVar[bool] = False
    #: smallest input side the model accepts
    min_size: ClassVar[int] = 32

    def __init__(self) -> None:
        super().__init__()
        self.weights: str = "random-init"
        self.score_range: tuple[float, float] | None = None
        self._feature_mask_hook: "torch.utils.hooks.RemovableHandle | None" = None

    # --- weights ----------------------------------------------------------
    def pretrained_weights(self) -> "Path | None":
        """A local file with this model's pretrained weights, or None.

        A ``<stem>.card.json`` beside the file (same stem as the weights, see
        :func:`iqabench.models.card_path`) supplies the model card, notably
        its clean ``score_range``.  Never downloads anything.
        """
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
            raise DatasetError(
                f"{where} is {w}x{h}, smaller than model {self.name!r}'s minimum input {self.min_size}x{self.min_size}"
            )

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


def normalised_gain(model: IQAModel, scores: torch.Tensor) -> torch.Tensor:
    """Scores mapped so that increasing them is always "better quality".

    Attacks maximise this; dividing by the clean range keeps step sizes
    comparable across models (REFERENCES.md 1: ``J = 1 - s/range``).
    """
    lo, hi = model.score_range or (0.0, 1.0)
    span = (hi - lo) or 1.0
    return model.direction * scores / span


# --------------------------------------------------------------- datasets ---
@dataclass(frozen=True)
class Item:
    """One image of a dataset: its name, MOS (None without one) and source.

    ``ref`` and ``group`` are the strata a limited run samples over
    (:func:`iqabench.sampling.subset`): the content an image shows and the
    kind of image it is (e.g. its distortion type, ``"pristine"`` for a
    reference; ``""`` when the dataset has no such grouping).
    """

    name: str
    mos: float | None
    source: Any = None  # a path, or an index into an in-memory array
    ref: str = ""  # reference content id (for content-disjoint splits)
    group: str = ""  # e.g. the distortion type (a stratum for limited runs)


class IQADataset:
    """Named items with named splits; images validated on load.

    ``mos_range`` is the nominal range of the dataset's labels.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    mos_range: tuple[float, float] = (0.0, 100.0)

    def splits(self) -> list[str]:
        raise NotImplementedError

    def items(self, split: str) -> Sequence[Item]:
        raise NotImplementedError

    def load(self, item: Item) -> torch.Tensor:
        """The image as float32 3xHxW in [0,1]."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Identifies the data content (for cache keys); default: the name."""
        return self.name


# ---------------------------------------------------------------- attacks ---
@dataclass
class AttackResult:
    """Attacked images and the bound each one was held to."""

    images: torch.Tensor
    bound: torch.Tensor  # per image, in the units of ``norm``
    norm: str  # "linf" | "l2" | "mse" | ...


class Attack:
    """An adversarial attack on a batch: ``attack(model, x) -> x_adv``.

    Parameters are dataclass fields of the subclass with defaults from
    REFERENCES.md.  ``kind`` tells the runner how to drive the attack.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "adversarial"  # "adversarial" | "universal" | "backdoor"

    @classmethod
    def suits(cls, model: type[IQAModel]) -> bool:
        """Whether this attack applies to models of class ``model`` (default: all)."""
        return True

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        raise NotImplementedError

    def __call__(self, model: IQAModel, x: torch.Tensor) -> torch.Tensor:
        return self.perturb(model, x).images


class UniversalAttack(Attack):
    """A universal adversarial perturbation (UAP): one perturbation for all images.

    ``fit`` trains the perturbation on batches of a training split (the
    runner caches the result as an artifact keyed by model, data, parameters
    and seed); ``apply`` adds it to test images at one amplitude.  The
    methodology evaluates amplitudes 0.2, 0.4 and 0.8 and reports each and
    their mean.
    """

    kind: ClassVar[str] = "universal"
    amplitudes: ClassVar[tuple[float, ...]] = (0.2, 0.4, 0.8)

    def fit(self, model: IQAModel, batches: "Iterable[torch.Tensor]", device: str = "cpu") -> torch.Tensor:
        """Train and return the perturbation, shape 1x3xhxw."""
        raise NotImplementedError

    @staticmethod
    def apply(uap: torch.Tensor, x: torch.Tensor, amplitude: float) -> torch.Tensor:
        """``clamp(x + amplitude * tile(uap), 0, 1)`` -- the reference code
        forgot the clamp; we do not."""
        h, w = x.shape[-2:]
        reps = (1, 1, -(-h // uap.shape[-2]), -(-w // uap.shape[-1]))
        tiled = uap.to(x.device, x.dtype).repeat(*reps)[..., :h, :w]
        return (x + amplitude * tiled).clamp(0.0, 1.0)

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        raise NotImplementedError("universal attacks are fitted once, then applied: see fit/apply")


# --------------------------------------------------------------- triggers ---
class Trigger:
    """A backdoor trigger: ``apply(x, alpha) -> x_triggered``.

    ``x`` is a batch of RGB images, ``B x 3 x H x W`` in [0, 1]; ``alpha`` the
    trigger strength, a float for the whole batch or a ``Tensor[B]`` with one
    strength per image (P-BAIQA poisons the images of one batch with
    different strengths).  ``alpha = 1`` is the trigger at the strength its
    parameters name (REFERENCES.md 2); ``alpha`` scales it linearly and its
    sign is meaningful (a negative alpha asks for a score shift downwards).
    The result has the shape, dtype and device of ``x`` and is clamped to
    [0, 1]; ``clamp=False`` returns it before that clamp (PSNR figures of the
    BAIQA paper are of the unclamped image).

    Parameters are dataclass fields of the subclass with defaults from
    REFERENCES.md.  ``differentiable`` says whether the output is
    differentiable with respect to ``x`` (a trigger that quantises its input,
    as the DCT triggers do, is not: its gradient w.r.t. ``x`` is zero).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    differentiable: ClassVar[bool] = False

    def apply(self, x: torch.Tensor, alpha: "float | torch.Tensor" = 1.0, clamp: bool = True) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, alpha: "float | torch.Tensor" = 1.0, clamp: bool = True) -> torch.Tensor:
        return self.apply(x, alpha, clamp=clamp)

    def check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"trigger {self.name!r} expects float B x 3 x H x W RGB images, got {shape}")

    @staticmethod
    def alphas(alpha: "float | torch.Tensor", x: torch.Tensor, dtype: "torch.dtype | None" = None) -> torch.Tensor:
        """``alpha`` as a ``Tensor[B]`` on ``x``'s device (a scalar is broadcast).

        Gradients w.r.t. a tensor ``alpha`` are kept.
        """
        dtype = dtype or x.dtype
        b = x.shape[0]
        a = torch.as_tensor(alpha, dtype=dtype, device=x.device)
        if a.ndim == 0:
            return a.expand(b)
        a = a.reshape(-1)
        if a.shape[0] != b:
            raise ValueError(f"alpha has {a.shape[0]} values for a batch of {b} images")
        return a


# --------------------------------------------------------------- defences ---
#: ``regulariser(forward, crops, pred) -> loss term`` added to a training
#: step's loss: ``forward`` re-runs ``model.training_forward`` with the random
#: state of the step's own forward (same dropout masks / random patches),
#: ``crops`` (requires grad) are the step's inputs and ``pred`` their scores.
Regulariser = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor], torch.Tensor]


class Defense:
    """A defence turns a model into a defended one, by one of two routes.

    ``kind = "training"`` (e.g. NT): the defence changes how a model is
    trained; the harness gives ``apply`` a FRESH (randomly initialised)
    model and the data the model would be trained on.
    ``kind = "post-training"`` (fine-tuning, pruning): the harness gives
    ``apply`` the TRAINED (possibly backdoored) model and clean data; the
    defence uses a benign part of its ``train`` split.

    Either way ``apply`` changes the model in place and returns a JSON-able
    summary; the harness caches the result as weights keyed by the full
    configuration (:mod:`iqabench.defended`).  Parameters are dataclass
    fields of the subclass with defaults from REFERENCES.md.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "post-training"  # "training" | "post-training"

    def apply(self, model: IQAModel, dataset: IQADataset, seed: int, device: str = "cpu",
              progress: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def baseline_params(self) -> dict[str, Any] | None:
        """The like-for-like undefended baseline this defence is judged against.

        A defended number means something only next to the same model made
        the same way without the defence.  ``None`` (the default, right for
        post-training defences): the baseline is the undefended model the
        defence started from (``--defense none`` with the same weights).  A
        training-time defence returns the parameters that switch its effect
        off while keeping its recipe, seed and pipeline (NT: ``{"lam": 0}``),
        so that the baseline is trained exactly as the defended model is.
        """
        return None
