"""Generic training and evaluation of IQA models (no model or dataset named).

``train_model`` is what an unsuspecting trainer does with a model's own
``TrainRecipe``: random crops with their image's MOS as the target, optional
horizontal flips, L1 or MSE, Adam or SGD, step decay.  Backdoor and defence
experiments reuse it unchanged, so it must be fully seeded: the same seed,
data and recipe give the same weights (on the same device).

``evaluate`` scores a split in eval mode; ``train_and_save`` trains, scores
and writes the weights plus a model card whose ``score_range`` (the model's
clean score range over the whole dataset) fixes the normalisation of every
robustness score later computed for this model.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .artifacts import save_state, write_json
from .contracts import IQADataset, IQAModel, Item, TrainRecipe
from .errors import DatasetError, ModelError
from .params import param_specs
from .scores import correlations

TRAIN_SPLIT, TEST_SPLIT = "train", "test"
_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}
_LR_DECAY = 0.1  # TrainRecipe.lr_step divides the learning rate by 10
_UINT8_TOLERANCE = 1e-6


def seed_everything(seed: int) -> None:
    """Seed every random number generator training touches."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ------------------------------------------------------------ image bank ---
class ImageBank:
    """The training images in memory, as uint8 whenever that is lossless.

    Datasets of 8-bit photographs (all of them, in practice) then take a
    quarter of the memory of float32 tensors; anything else is kept as is.
    """

    def __init__(self, dataset: IQADataset, items: Sequence[Item]) -> None:
        self.images: list[torch.Tensor] = []
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
            raise DatasetError(f"image #{index} is {w}x{h}, smaller than the training crop {size}")
        top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - size + 1, (1,), generator=gen))
        out = img[:, top : top + size, left : left + size]
        if hflip and bool(torch.rand(1, generator=gen) < 0.5):
            out = out.flip(-1)
        return out.float().div(255.0) if out.dtype == torch.uint8 else out


# -------------------------------------------------------------- training ---
def _optimizer(model: IQAModel, recipe: TrainRecipe) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        momentum = float(recipe.extra.get("momentum", 0.9))
        return torch.optim.SGD(params, lr=recipe.lr, momentum=momentum, weight_decay=recipe.weight_decay)
    raise ModelError(f"model {model.name!r}: unknown optimizer {recipe.optimizer!r} (adam, sgd)")


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        disable=not enabled,
    )


def train_model(
    model: IQAModel,
    dataset: IQADataset,
    recipe: TrainRecipe,
    seed: int,
    device: str = "cpu",
    progress: bool = True,
    split: str = TRAIN_SPLIT,
) -> dict[str, Any]:
    """Train ``model`` in place on ``dataset``'s ``split`` following ``recipe``.

    One epoch draws ``recipe.patches_per_image`` random crops of every image
    (in a seeded random order), each carrying its image's MOS.  Returns a
    summary: epochs, steps, per-epoch mean loss, train time.
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
    loss_fn = _LOSSES[recipe.loss]
    model.to(device).train()
    opt = _optimizer(model, recipe)
    sched = torch.optim.lr_scheduler.StepLR(opt, recipe.lr_step, _LR_DECAY) if recipe.lr_step else None
    samples = len(items) * recipe.patches_per_image
    steps_per_epoch = -(-samples // recipe.batch_size)
    history: list[float] = []
    start = time.perf_counter()
    with _progress(progress) as bar:
        task = bar.add_task(f"train {model.name}", total=recipe.epochs * steps_per_epoch, status="")
        for epoch in range(recipe.epochs):
            order = torch.randperm(samples, generator=gen) % len(items)
            total = 0.0
            for step in range(steps_per_epoch):
                idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
                crops = torch.stack([bank.crop(int(i), recipe.crop, gen, recipe.hflip) for i in idx]).to(device)
                pred = model.training_forward(crops)
                loss = loss_fn(pred, targets[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss) * len(idx)
                bar.update(task, advance=1, status=f"epoch {epoch + 1}/{recipe.epochs} loss {float(loss):.3f}")
            history.append(total / samples)
            if sched is not None:
                sched.step()
    model.eval()
    return {
        "epochs": recipe.epochs,
        "steps": recipe.epochs * steps_per_epoch,
        "train_images": len(items),
        "loss_history": history,
        "train_time_s": time.perf_counter() - start,
    }


# ------------------------------------------------------------ evaluation ---
@torch.no_grad()
def predict(
    model: IQAModel, dataset: IQADataset, items: Sequence[Item], device: str = "cpu", batch_size: int = 32
) -> np.ndarray:
    """Eval-mode scores of ``items``, in order.

    Images are loaded as they are scored (memory stays at one batch); runs
    of consecutive images of equal size are batched together.
    """
    model.to(device).eval()
    out = np.empty(len(items), dtype=np.float64)
    batch: list[torch.Tensor] = []
    first = 0

    def flush() -> None:
        scores = model(torch.stack(batch).to(device))
        if not torch.isfinite(scores).all():
            raise ModelError(f"model {model.name!r} produced a non-finite score on {items[first].name!r}")
        out[first : first + len(batch)] = scores.double().cpu().numpy()

    for i, item in enumerate(items):
        x = dataset.load(item)
        if batch and (x.shape != batch[0].shape or len(batch) == batch_size):
            flush()
            batch, first = [], i
        batch.append(x)
    if batch:
        flush()
    return out


def evaluate(
    model: IQAModel, dataset: IQADataset, split: str = TEST_SPLIT, device: str = "cpu", batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Predictions, MOS and names of the labelled images of ``split``."""
    items = [it for it in dataset.items(split) if it.mos is not None]
    pred = predict(model, dataset, items, device, batch_size)
    mos = np.array([it.mos for it in items], dtype=np.float64)
    return pred, mos, [it.name for it in items]


# ----------------------------------------------------------- model cards ---
def card_path(weights: Path) -> Path:
    """``<stem>.card.json`` beside a weights file."""
    return weights.with_name(weights.stem + ".card.json")


def model_params(model: IQAModel) -> dict[str, Any]:
    """The constructor parameters a model kept as attributes of the same name."""
    return {name: getattr(model, name) for name in param_specs(type(model)) if hasattr(model, name)}


def train_and_save(
    model: IQAModel,
    dataset: IQADataset,
    recipe: TrainRecipe,
    seed: int,
    path: Path,
    device: str = "cpu",
    progress: bool = True,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train, evaluate on the test split, save weights and the model card.

    The card's ``score_range`` is the [min, max] of the model's clean scores
    over every image of every split: a fixed range, so robustness scores of
    different attacks stay comparable (REFERENCES.md section 1).
    """
    path = Path(path)
    summary = train_model(model, dataset, recipe, seed, device, progress)
    splits = dataset.splits()
    test = TEST_SPLIT if TEST_SPLIT in splits else splits[-1]
    pred, mos, _ = evaluate(model, dataset, test, device)
    metrics = correlations(pred, mos)
    all_items = [it for s in splits for it in dataset.items(s)]
    everything = predict(model, dataset, all_items, device)
    card = {
        "model": model.name,
        "params": params if params is not None else model_params(model),
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint(),
        "seed": seed,
        "device": device,
        "recipe": asdict(recipe),
        "test_split": test,
        "test_images": len(mos),
        "test_srocc": metrics["srocc"],
        "test_plcc": metrics["plcc"],
        "test_rmse": metrics["rmse"],
        "train_time_s": round(summary["train_time_s"], 1),
        "final_train_loss": summary["loss_history"][-1],
        "score_range": [float(everything.min()), float(everything.max())],
        "torch": torch.__version__,
    }
    save_state(path, model.state_dict(), metadata={"model": model.name, "dataset": dataset.fingerprint()})
    write_json(card_path(path), card)
    return card
