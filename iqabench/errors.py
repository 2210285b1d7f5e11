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
