"""Fine-tuning defence: continue training on a small benign set (BAIQA, REFERENCES.md 2).

A backdoor (or an adversarially brittle solution) lives in weights that the
clean data never exercises; a few more epochs of the standard recipe on
clean images overwrite part of it.  The defender is assumed to own only a
fraction (20% in the paper) of the clean training data.
"""
from __future__ import annotations

from dataclasses import dataclass

from iqabench.data.benign import TRAIN_SPLIT, benign_items
from iqabench.contracts import Defense, IQADataset, IQAModel
from iqabench.errors import ParameterError
from iqabench.data.views import SubsetDataset

from .common import model_recipe
from .. import bib


@dataclass
class FineTune(Defense):
    """Fine-tune the whole trained model on ``fraction`` of the benign training split.

    Uses the model's own recipe ``profile`` (the standard recipe);
    ``epochs`` > 0 overrides its number of epochs (0: the recipe's).
    """

    name = "finetune"
    citation = (bib.FINE_PRUNING, bib.BAIQA)  # as BAIQA evaluates it against backdoors
    description = "Fine-tune the trained model on a benign 20% of the training data with its own recipe (BAIQA)"
    kind = "post-training"

    fraction: float = 0.2
    profile: str = "default"
    epochs: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ParameterError(f"'finetune' parameter 'fraction' must be in (0, 1], got {self.fraction!r}")
        if self.epochs < 0:
            raise ParameterError(f"'finetune' parameter 'epochs' must be >= 0, got {self.epochs!r}")

    def apply(self, model: IQAModel, dataset: IQADataset, seed: int, device: str = "cpu",
              progress: bool = True) -> dict:
        from iqabench.models.training import train_model

        items = benign_items(dataset, self.fraction, seed)
        recipe = model_recipe(model, self.profile, self.epochs, self.name)
        benign = SubsetDataset(dataset, TRAIN_SPLIT, [it.name for it in items])
        summary = train_model(model, benign, recipe, seed, device, progress)
        return {"benign_images": len(items), "epochs": summary["epochs"],
                "final_train_loss": summary["loss_history"][-1], "train_time_s": round(summary["train_time_s"], 1)}
