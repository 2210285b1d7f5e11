"""The defence contract: a training-time or post-training transformation of a
model (:class:`Defense`), or an input transformation applied before the model
at inference (:class:`InputDefense`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch

from ..errors import ParameterError
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
    kind: ClassVar[str] = "post-training"  # "training" | "post-training" | "inference"

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


@dataclass
class InputDefense(Defense):
    """An inference-time defence: the defended model scores ``model(purify(x))``.

    Nothing is trained or cached: the harness wraps the cell's model
    (:mod:`iqabench.models.purified`).  Subclasses implement :meth:`purify`
    and declare whether it is ``differentiable`` (False: an adaptive
    attacker back-propagates through it as the identity -- BPDA) and
    ``random`` (True: it draws from torch's global RNG, which the harness
    seeds per batch, and an adaptive attacker averages ``eot_samples``
    draws per forward -- EOT).

    The two fields every input defence has describe the ATTACKER the cell
    measures (so they are in the cell key, with the defence's parameters):
    ``adaptive = False`` crafts the attack on the bare model and lets the
    defended model score it (the defences benchmark's protocol);
    ``adaptive = True`` crafts it through the defence.  ``eot_samples``
    (random defences, adaptive cells only) is the number of draws averaged
    per forward; 20 is the ``eot_iter`` of the DiffPure runner in the
    defences benchmark's release.
    """

    kind: ClassVar[str] = "inference"
    differentiable: ClassVar[bool] = True
    random: ClassVar[bool] = False
    #: True when :meth:`certify` gives certified score intervals (median smoothing)
    certified: ClassVar[bool] = False

    adaptive: bool = False
    eot_samples: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.eot_samples, bool) or not isinstance(self.eot_samples, int) or self.eot_samples < 1:
            raise ParameterError(f"{self.name!r} parameter 'eot_samples' must be an integer >= 1, "
                                 f"got {self.eot_samples!r}")

    def purify(self, x: torch.Tensor) -> torch.Tensor:
        """The purified batch (Bx3xHxW in [0, 1]; its size may differ from ``x``'s).
        For a smoothing defence: one random draw of its input noise."""
        raise NotImplementedError

    def defend(self, model: IQAModel, x: torch.Tensor) -> torch.Tensor:
        """The defended model's scores of ``x``: ``model(purify(x))`` unless the
        defence aggregates several forwards (median smoothing)."""
        return model(self.purify(x))

    def certify(self, model: IQAModel, x: torch.Tensor) -> dict[float, tuple[torch.Tensor, torch.Tensor]]:
        """Radius -> (lower, upper) certified bounds per image of the defended score
        (``certified`` defences only), drawn as :meth:`defend` draws."""
        raise NotImplementedError

    def apply(self, model: IQAModel, dataset: IQADataset, seed: int, device: str = "cpu",
              progress: bool = True) -> dict[str, Any]:
        raise ParameterError(f"defense {self.name!r} acts at inference and transforms no model; "
                             f"it applies to evasion cells only")
