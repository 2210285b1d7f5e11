"""Generic training of IQA models (no model or dataset named).

``train_model`` is what an unsuspecting trainer does with a model's own
``TrainRecipe``: random crops with their image's MOS as the target, optional
horizontal flips, L1 or MSE, Adam or SGD, step decay.  Backdoor and defence
experiments reuse it unchanged, so it is fully reproducible: the same seed,
data and recipe give bit-identical weights in any process on any machine
with the same CPU kind and torch build (:func:`reproducible`: the recipe's
thread count and deterministic algorithms; the data order, crops, flips,
dropout and patch positions all come from generators seeded with ``seed``).

Scoring lives in :mod:`.evaluation`; saving the weights with a model card
in :mod:`.cards`.
"""
from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..contracts import IQADataset, IQAModel, Item, Regulariser, TrainRecipe
from ..errors import DatasetError, ModelError
from ..progress import CostMeter
from ..progress import progress as progress_bar

TRAIN_SPLIT = "train"
_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}
_LR_DECAY = 0.1  # TrainRecipe.lr_step divides the learning rate by 10
_UINT8_TOLERANCE = 1e-6


def seed_everything(seed: int) -> None:
    """Seed every random number generator training touches."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def reproducible(threads: int):
    """Run the block on ``threads`` CPU threads with deterministic algorithms,
    then restore the caller's settings.

    Measured (cnniqa, NT quick recipe): the same seed gave bit-identical
    weights in separate processes, under load or not, at one thread count,
    and different weights at 1 and 2 threads -- ``make demo``'s shell
    decides torch's default count (``OMP_NUM_THREADS``, the cores it sees),
    which is how two runs of one configuration trained different models.
    Deterministic algorithms change nothing on the CPU kernels this
    trainer's models use; they make CUDA pick deterministic kernels
    (``warn_only``: an op without one warns instead of failing, and CUDA
    matmuls need ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` set before start).
    """
    if not isinstance(threads, int) or threads < 1:
        raise ModelError(f"training recipe: threads must be an integer >= 1, got {threads!r}")
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1], warn_only=before[2])


# ------------------------------------------------------------ image bank ---
class ImageBank:
    """The training images in memory, as uint8 whenever that is lossless.

    Datasets of 8-bit photographs (all of them, in practice) then take a
    quarter of the memory of float32 tensors; anything else is kept as is.
    An image smaller than the crop is scaled up once (bilinear, its short
    side to the crop, aspect kept -- the policy by which the zoo's scoring
    path fits small images, so a model trains and is scored on the same
    view) and cropped from there: HyperIQA's 224 px paper crop then trains
    on the embedded dataset's 192 px images.  Images at least as large as
    the crop are cropped exactly as they always were.
    """

    def __init__(self, dataset: IQADataset, items: Sequence[Item]) -> None:
        self.images: list[torch.Tensor] = []
        self._scaled: dict[tuple[int, int], torch.Tensor] = {}
        for item in items:
            x = dataset.load(item)
            if x.ndim != 3 or x.shape[0] != 3:
                raise DatasetError(f"dataset {dataset.name!r}: {item.name!r} is not a 3xHxW RGB image")
            q = torch.round(x * 255.0)
            exact = bool(((q / 255.0 - x).abs().max() <= _UINT8_TOLERANCE).item())
            self.images.append(q.to(torch.uint8) if exact else x.float())

    def crop(self, index: int, size: int, gen: torch.Generator, hflip: bool) -> torch.Tensor:
        """A random ``size`` x ``size`` crop of image ``index`` as float in [0,1]."""
        img = self.images[index]
        h, w = img.shape[-2:]
        if min(h, w) < size:
            img = self.scaled_up(index, size)
            h, w = img.shape[-2:]
        top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - size + 1, (1,), generator=gen))
        out = img[:, top : top + size, left : left + size]
        if hflip and bool(torch.rand(1, generator=gen) < 0.5):
            out = out.flip(-1)
        return out.float().div(255.0) if out.dtype == torch.uint8 else out

    def scaled_up(self, index: int, size: int) -> torch.Tensor:
        """Image ``index`` with its short side scaled up to ``size`` (cached)."""
        if (index, size) not in self._scaled:
            img = self.images[index]
            x = img.float().div(255.0) if img.dtype == torch.uint8 else img
            h, w = x.shape[-2:]
            short = min(h, w)
            shape = (max(size, round(h * size / short)), max(size, round(w * size / short)))
            self._scaled[(index, size)] = F.interpolate(x[None], size=shape, mode="bilinear", align_corners=False)[0]
        return self._scaled[(index, size)]


# -------------------------------------------------------------- training ---
def _param_groups(model: IQAModel, recipe: TrainRecipe) -> list[dict[str, Any]]:
    """Trainable parameters grouped by learning rate.

    ``recipe.extra["lr_mult"]`` maps parameter-name prefixes to learning-rate
    multipliers (the longest matching prefix wins, ``""`` matches every
    parameter; unmatched parameters get 1), e.g. HyperIQA's
    ``{"": 10, "net.base_model.": 1}``: the hyper network at 10 x lr.
    """
    mult = {str(k): float(v) for k, v in (recipe.extra.get("lr_mult") or {}).items()}
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        best = max((k for k in mult if name.startswith(k)), key=len, default=None)
        groups.setdefault(mult[best] if best is not None else 1.0, []).append(p)
    if not groups:
        raise ModelError(f"model {model.name!r}: no trainable parameters")
    return [{"params": ps, "lr": recipe.lr * m} for m, ps in groups.items()]


def _optimizer(model: IQAModel, recipe: TrainRecipe) -> torch.optim.Optimizer:
    params = _param_groups(model, recipe)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        momentum = float(recipe.extra.get("momentum", 0.9))
        return torch.optim.SGD(params, lr=recipe.lr, momentum=momentum, weight_decay=recipe.weight_decay)
    raise ModelError(f"model {model.name!r}: unknown optimizer {recipe.optimizer!r} (adam, sgd)")


def recipe_phases(recipe: TrainRecipe) -> list[TrainRecipe]:
    """The consecutive stages of a recipe (one, unless ``extra["phases"]``).

    Each entry of ``recipe.extra["phases"]`` overrides TrainRecipe fields
    (``epochs``, ``lr``, ``optimizer``, ``weight_decay``, ``lr_step``, ``loss``,
    ...) for one stage and may name ``trainable``: the parameter-name prefixes
    that train in that stage (the others are frozen; ``""`` = all), e.g.
    DBCNN's fc-only SGD stage followed by Adam on the whole network.  Every
    stage gets a fresh optimizer and schedule.
    """
    phases = recipe.extra.get("phases")
    if not phases:
        return [recipe]
    base_extra = {k: v for k, v in recipe.extra.items() if k != "phases"}
    out = []
    for i, phase in enumerate(phases):
        fields = {k: v for k, v in phase.items() if k != "trainable"}
        unknown = sorted(set(fields) - set(TrainRecipe.__dataclass_fields__) - {"extra"})
        if unknown:
            raise ModelError(f"recipe phase {i + 1}: unknown field(s) {', '.join(unknown)}")
        extra = {**base_extra, **fields.pop("extra", {})}
        if "trainable" in phase:
            extra["trainable"] = [str(p) for p in phase["trainable"]]
        out.append(replace(recipe, **fields, extra=extra))
    return out


def _set_trainable(model: IQAModel, recipe: TrainRecipe) -> None:
    prefixes = recipe.extra.get("trainable")
    if prefixes is None:
        return
    for name, p in model.named_parameters():
        p.requires_grad_(any(name.startswith(prefix) for prefix in prefixes))


def _replaying_forward(model: IQAModel, device: str):
    """Snapshot the random state now; the returned ``forward(x)`` runs
    ``model.training_forward(x)`` from that same state and then leaves the
    generators where they were before it ran.

    A regulariser that compares ``f(x + h d)`` with ``f(x)`` (NT) must see
    the SAME dropout masks and random patch positions in both forwards,
    otherwise the difference measures the randomness, not the input
    sensitivity.  Replaying the same draws also leaves the generators
    exactly as a plain step would, so a zero-weight regulariser reproduces
    plain training bit for bit.
    """
    cuda = device.startswith("cuda")
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(torch.device(device)) if cuda else None

    def forward(x: torch.Tensor) -> torch.Tensor:
        after_cpu = torch.get_rng_state()
        after_cuda = torch.cuda.get_rng_state(torch.device(device)) if cuda else None
        torch.set_rng_state(cpu_state)
        if cuda:
            torch.cuda.set_rng_state(cuda_state, torch.device(device))
        try:
            return model.training_forward(x)
        finally:
            torch.set_rng_state(after_cpu)
            if cuda:
                torch.cuda.set_rng_state(after_cuda, torch.device(device))

    return forward


def _steps_per_epoch(recipe: TrainRecipe, images: int) -> int:
    steps = -(-images * recipe.patches_per_image // recipe.batch_size)
    if recipe.extra.get("steps_per_epoch"):  # a cap, e.g. for CPU smoke profiles
        steps = min(steps, int(recipe.extra["steps_per_epoch"]))
    return steps


def training_steps(recipe: TrainRecipe, images: int) -> int:
    """The optimiser steps :func:`train_model` takes on ``images`` labelled images."""
    return sum(p.epochs for p in recipe_phases(recipe)) * _steps_per_epoch(recipe, images)


def _cheaper(device: str) -> str:
    """What makes training cheaper (a model's training set is its whole train
    split: --limit only thins the evaluation)."""
    gpu = ", a GPU (--device cuda)" if device == "cpu" else ""
    return f"the smaller recipe (--profile quick){gpu}"


def train_model(
    model: IQAModel,
    dataset: IQADataset,
    recipe: TrainRecipe,
    seed: int,
    device: str = "cpu",
    progress: bool = True,
    split: str = TRAIN_SPLIT,
    regulariser: Regulariser | None = None,
    augment: Callable[[torch.Tensor, torch.Tensor, Callable], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place on ``dataset``'s ``split`` following ``recipe``.

    One epoch draws ``recipe.patches_per_image`` random crops of every image
    (in a seeded random order), each carrying its image's MOS.  Runs on
    ``recipe.threads`` CPU threads with deterministic algorithms
    (:func:`reproducible`).  Returns a summary: epochs, steps, per-epoch mean
    loss, train time.

    ``regulariser`` (a training-time defence such as NT) adds a term to each
    step's loss; it gets a replaying forward, the crops (with
    ``requires_grad``) and their scores -- see :data:`Regulariser`.
    ``augment(crops, targets, loss_fn) -> (crops, targets)`` (adversarial
    training) changes each step's batch before the forward; None leaves the
    step exactly as plain training's.
    """
    if recipe.loss not in _LOSSES:
        raise ModelError(f"model {model.name!r}: unknown loss {recipe.loss!r} ({', '.join(_LOSSES)})")
    items = [it for it in dataset.items(split) if it.mos is not None]
    if not items:
        raise DatasetError(f"dataset {dataset.name!r}: split {split!r} has no labelled images to train on")
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    bank = ImageBank(dataset, items)
    targets = torch.tensor([it.mos for it in items], dtype=torch.float32)
    phases = recipe_phases(recipe)
    for phase in phases:
        if phase.loss not in _LOSSES:
            raise ModelError(f"model {model.name!r}: unknown loss {phase.loss!r} ({', '.join(_LOSSES)})")
    model.to(device).train()
    samples = len(items) * recipe.patches_per_image
    steps_per_epoch = _steps_per_epoch(recipe, len(items))
    epochs = sum(p.epochs for p in phases)
    meter = CostMeter(f"training {model.name}", epochs * steps_per_epoch, device, _cheaper(device))
    history: list[float] = []
    start = time.perf_counter()
    was_trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    try:
        with reproducible(recipe.threads), progress_bar(progress) as bar:
            task = bar.add_task(f"train {model.name}", total=epochs * steps_per_epoch)
            for phase in phases:
                _set_trainable(model, phase)
                loss_fn = _LOSSES[phase.loss]
                opt = _optimizer(model, phase)
                sched = torch.optim.lr_scheduler.StepLR(opt, phase.lr_step, _LR_DECAY) if phase.lr_step else None
                for _ in range(phase.epochs):
                    epoch = len(history)
                    order = torch.randperm(samples, generator=gen) % len(items)
                    total = 0.0
                    for step in range(steps_per_epoch):
                        idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
                        crops = torch.stack([bank.crop(int(i), recipe.crop, gen, recipe.hflip) for i in idx]).to(device)
                        target = targets[idx].to(device)
                        if augment is not None:
                            crops, target = augment(crops, target, loss_fn)
                        if regulariser is not None:
                            crops.requires_grad_(True)
                            replay = _replaying_forward(model, device)
                        pred = model.training_forward(crops)
                        loss = loss_fn(pred, target)
                        opt.zero_grad(set_to_none=True)
                        if regulariser is not None:
                            loss = loss + regulariser(replay, crops, pred)
                            # the parameters' gradients only: the crops require grad for the penalty's
                            # input gradient, and a plain backward would also fill theirs (a quarter of
                            # an NT step, never read); the parameters' gradients are the same bits
                            loss.backward(inputs=[p for p in model.parameters() if p.requires_grad])
                        else:
                            loss.backward()
                        opt.step()
                        value = loss.item()
                        total += value * len(idx)
                        bar.update(task, advance=1, description=f"train {model.name} {epoch + 1}/{epochs} loss {value:.3f}")
                        meter.step()
                    history.append(total / min(samples, steps_per_epoch * recipe.batch_size))
                    if sched is not None:
                        sched.step()
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(was_trainable[name])
    model.eval()
    return {
        "epochs": epochs,
        "steps": epochs * steps_per_epoch,
        "train_images": len(items),
        "loss_history": history,
        "train_time_s": time.perf_counter() - start,
    }
