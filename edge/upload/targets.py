"""What the uploader needs from a store, and the URI that picks one.

A target's ``put`` returns only once the store confirmed the object (status and a size or
ETag check); anything else is a :class:`StoreError`. Messages never carry credentials: every
target knows its secrets and passes each message through :func:`redact`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlsplit

import certifi
import urllib3

from edge.errors import ConfigError
from edge.upload.config import UploadConfig


class StoreError(OSError):
    """The store did not take an object. ``offline`` is True for what goes away by itself
    (connection refused or reset, timeouts, 5xx, throttling) and False for a refusal that
    needs a person (access denied, no such bucket)."""

    def __init__(self, message: str, *, offline: bool) -> None:
        super().__init__(message)
        self.offline = offline


class Target(Protocol):
    """An object store the uploader writes to."""

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


def connection_pool(
    connect_timeout: float, read_timeout: float, parallel: int, ca_file: str | None
) -> urllib3.PoolManager:
    """The HTTP connections of a network target: TLS verified, no retries inside urllib3
    (the uploader backs off itself, with jitter, and counts), and timeouts that bound how
    long stop() can wait on a stalled store."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=max(2, parallel),
        retries=urllib3.Retry(total=0, redirect=0, raise_on_status=False),
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_file or certifi.where(),
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        # Very short values would blank out ordinary words; no real credential is that short.
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def strip_userinfo(uri: str) -> str:
    """``uri`` without ``user:password@``, for messages."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def open_target(uri: str, config: UploadConfig | None = None) -> Target:
    """The target a URI names: ``s3://bucket/prefix``, ``https://host/path`` (``http://`` on
    loopback only), ``file:///dir``. A URI that cannot work is a ConfigError naming it."""
    config = config or UploadConfig()
    shown = strip_userinfo(uri)
    scheme = urlsplit(uri).scheme.lower()
    if scheme == "s3":
        from edge.upload.s3 import S3Target

        return S3Target.from_uri(uri, config)
    if scheme in ("http", "https"):
        from edge.upload.https import HttpTarget

        return HttpTarget.from_uri(uri, config)
    if scheme == "file":
        from edge.upload.directory import DirectoryTarget

        return DirectoryTarget.from_uri(uri)
    raise ConfigError(
        f"upload.target: {shown!r} is not an upload target; use s3://bucket/prefix, "
        "https://host/path or file:///directory"
    )


def describe(exc: BaseException) -> str:
    """One line for a network failure, without the stack of wrapped exceptions urllib3 adds."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException) and reason is not exc:
        return describe(reason)
    if isinstance(exc, TimeoutError):
        return f"timed out ({exc})" if str(exc) else "timed out"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


__all__ = ["StoreError", "Target", "open_target", "redact", "strip_userinfo"]
