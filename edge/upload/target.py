"""What the uploader needs from a store: the :class:`Target` protocol and :class:`StoreError`.

A target's ``put`` returns only once the store confirmed the object (status and a size or
ETag check); anything else is a :class:`StoreError`. Messages never carry credentials: every
target knows its secrets and passes each message through :func:`redact`.

This module imports no network library, so the uploader and a ``file://`` target can use it
on a device where only the directory outbox is configured.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class StoreError(OSError):
    """The store did not take an object. ``offline`` is True for what goes away by itself
    (connection refused or reset, timeouts, 5xx, throttling) and False for a refusal that
    needs a person (access denied, no such bucket)."""

    def __init__(self, message: str, *, offline: bool) -> None:
        super().__init__(message)
        self.offline = offline


class Target(Protocol):
    """An object store the uploader writes to.

    A target class also has ``from_uri(uri, config)``, which :func:`edge.upload.open_target`
    calls for the URI schemes it is registered under.
    """

    #: Key prefix inside the store (``s3://bucket/<prefix>``); "" where the URI's path is
    #: already part of the base (https, file).
    prefix: str

    @property
    def uri(self) -> str:
        """The target as the user gave it, with any credentials removed."""
        ...

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be shown (for redaction of messages from elsewhere)."""
        ...

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` at ``key``; return once the store confirmed it, else StoreError."""
        ...

    def exists(self, key: str) -> bool: ...

    def url(self, key: str) -> str:
        """How a labelling tool (or a person) addresses the object at ``key``."""
        ...

    def close(self) -> None: ...


def redact(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        # Very short values would blank out ordinary words; no real credential is that short.
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def _split_userinfo(uri: str) -> tuple[str, str, str]:
    """``(scheme "://", userinfo, rest)`` of ``uri``. Userinfo ends at the *last* ``@``:
    ``urlsplit`` ends it at the first ``/``, ``?`` or ``#``, so an AWS secret key with a ``/``
    in it (most have one) would otherwise be read as host and path and be shown."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "", uri
    else:
        scheme += sep
    userinfo, at, after = rest.rpartition("@")
    if not at:
        return scheme, "", rest
    return scheme, userinfo + at, after


def has_userinfo(uri: str) -> bool:
    """Whether ``uri`` carries ``user[:password]@`` (anything up to an ``@``)."""
    return "://" in uri and bool(_split_userinfo(uri)[1])


def strip_userinfo(uri: str) -> str:
    """``uri`` without ``user:password@``, for messages (``/``, ``?``, ``#`` or ``@`` in the
    password included)."""
    if "://" not in uri:
        return uri
    scheme, _, rest = _split_userinfo(uri)
    return scheme + rest


def redact_uri(uri: str) -> str:
    """``uri`` as messages, logs and summaries show it: no userinfo, and the value of every
    query parameter and the fragment masked (``?token=***``); presigned URLs and tokens travel
    there (``X-Amz-Signature``, ``X-Amz-Credential``, ``token``)."""
    shown = strip_userinfo(uri)
    shown, hash_, _ = shown.partition("#")
    base, question, query = shown.partition("?")
    if question:
        masked = [
            f"{name}=***" if eq else "***"
            for name, eq, _ in (p.partition("=") for p in query.split("&"))
        ]
        base += "?" + "&".join(masked)
    return base + ("#***" if hash_ else "")


__all__ = ["StoreError", "Target", "has_userinfo", "redact", "redact_uri", "strip_userinfo"]
