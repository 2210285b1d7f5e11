"""Errors a user can act on.

Every failure the user can fix (a wrong name, a bad parameter, an unreadable
image, a typo in a suite file) is raised as an :class:`IQABenchError`.  The
CLI prints such an error as one line and exits non-zero; it never shows a
traceback for them.  The message always names the culprit: the file, the
parameter or the plugin.
"""
from __future__ import annotations


class IQABenchError(Exception):
    """Base class: an error whose message is meant for the user."""


class UnknownNameError(IQABenchError, KeyError):
    """A model/dataset/attack/... name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginError(IQABenchError):
    """A plugin failed to load or registered something invalid."""


class ParameterError(IQABenchError):
    """A parameter that a component does not have, or of the wrong type."""


class DatasetError(IQABenchError):
    """A dataset or one of its images cannot be used."""


class ModelError(IQABenchError):
    """A model cannot be built, loaded or produced an invalid score."""


class SuiteError(IQABenchError):
    """A suite file that cannot be read or refers to unknown keys."""


class WeightsError(IQABenchError):
    """A weights file that is missing, corrupt or refused as unsafe."""


class WeightsUnavailable(WeightsError):
    """A published weights file that is not on this machine and may not be
    downloaded (offline): training may proceed without a pretrained backbone,
    saying so; a changed, truncated or unreachable file is never this."""


class NonFiniteError(ModelError):
    """A NaN or infinite score or input gradient inside an attack.

    Raised by :func:`iqabench.gradients.input_grad` (every gradient attack goes
    through it) with the positions of the offending images in the batch it was
    given and the attack's gradient step (1-based; ``None`` outside
    :func:`iqabench.gradients.counting_steps`).  The evasion experiment re-raises it with
    the images' dataset names (:meth:`named`).  Left alone, ``sign(NaN) = 0``
    would freeze such an image and the scores would count it as "left
    unchanged"; a benchmark must not publish that silently.
    """

    def __init__(self, what: str, indices: list[int], step: int | None, batch: int, message: str | None = None):
        self.what, self.indices, self.step, self.batch = what, list(indices), step, batch
        super().__init__(message or self._message(f"batch position(s) {', '.join(map(str, self.indices))}"))

    def _message(self, where: str, attack: str | None = None) -> str:
        at = f" at step {self.step}" if self.step is not None else ""
        return f"{f'attack {attack!r}: ' if attack else ''}non-finite {self.what}{at} on {where}"

    def named(self, attack: str, names: list[str]) -> "NonFiniteError":
        """The same error naming ``attack`` and the images (``names``: the
        batch the attack was given; if the failing call saw another batch, all
        of them are named as candidates)."""
        if self.batch == len(names):
            culprits = [names[i] for i in self.indices]
            where = ("image " if len(culprits) == 1 else "images ") + ", ".join(map(repr, culprits))
        else:
            where = "one of images " + ", ".join(map(repr, names))
        return NonFiniteError(self.what, self.indices, self.step, self.batch, self._message(where, attack))
