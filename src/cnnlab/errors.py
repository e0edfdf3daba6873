"""The errors a user can cause, each with a message that names the problem and the fix.

Every failure that comes from user input (a model name, an input size, a file, a checkpoint)
raises a subclass of :class:`CnnlabError`. The CLI prints ``cnnlab: error: <message>`` on one
line and exits non-zero; library users can catch the specific class.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """Base class: a problem the user can fix. The message says what and how."""


class UnknownModelError(CnnlabError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message; keep it readable
        return str(self.args[0]) if self.args else ""


class DuplicateModelError(CnnlabError):
    """Two registrations under one name."""


class InputSizeError(CnnlabError, ValueError):
    """An input volume a model cannot take (too small, wrong channel count)."""


class GeometryError(CnnlabError, ValueError):
    """A filter/stride/padding combination that does not tile its input."""


class DataError(CnnlabError):
    """A dataset that is missing, malformed or fails its checksum."""


class CheckpointError(CnnlabError):
    """A checkpoint or run directory that cnnlab did not write, or that is damaged."""


class ConfigError(CnnlabError, ValueError):
    """A training or export setting that is invalid or inconsistent."""


class TrainingError(CnnlabError):
    """Training that cannot continue (for example a non-finite loss)."""
