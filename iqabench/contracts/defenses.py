"""The defence contract: a training-time or post-training transformation of a model."""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch

from .datasets import IQADataset
from .models import IQAModel

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
    configuration (:mod:`iqabench.models.defended`).  Parameters are dataclass
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
