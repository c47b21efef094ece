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


__all__ = ["BackendUnavailable", "DataError", "ModelError"]
