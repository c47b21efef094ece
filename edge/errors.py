"""The errors a user of edge meets for bad input; each message says what is wrong and what to do."""

from __future__ import annotations


class ModelError(ValueError):
    """A model directory that cannot be used as it is.

    A missing or malformed ``manifest.json``, a missing or ill-typed key, a file whose sha256
    does not match, a model file that is not listed (or listed under the wrong runtime), a
    model file the runtime cannot read. The message names the path, key or file.
    """


class BackendUnavailable(ImportError):
    """The runtime a backend needs is not installed (or cannot run in this environment).

    The message names the pip package that provides it.
    """


class DataError(ValueError):
    """A data file (``.npz`` of ``images`` and ``labels``) that cannot be used as it is; the
    message names the file and what is expected."""


class ConfigError(ValueError):
    """A configuration (TOML file or command-line override) that cannot be used; the message
    names the key path, e.g. ``source.reconnect.max_delay``, and what it expects."""


class SourceError(OSError):
    """A frame source (camera, stream, file, directory) that cannot be opened at start."""


class UsageError(ValueError):
    """A command line that parses but cannot be carried out as given."""


#: Errors that are the user's input, not ours: the CLI reports them in one line, exit code 2.
INPUT_ERRORS = (DataError, ModelError, BackendUnavailable, ConfigError, SourceError, UsageError)

__all__ = [
    "INPUT_ERRORS",
    "BackendUnavailable",
    "ConfigError",
    "DataError",
    "ModelError",
    "SourceError",
    "UsageError",
]
