"""The URI that picks a target: a registry by scheme, one module per kind of store.

A target's module is imported only when a URI names its scheme, so a ``file://`` outbox does
not load minio or urllib3. Target modules import :mod:`edge.upload.target` (the interface)
and :mod:`edge.upload.http` (what network targets share), never this registry.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from edge.errors import ConfigError
from edge.upload.config import UploadConfig
from edge.upload.target import Target, redact_uri

# scheme → (module, class); ``http://`` goes to the HTTPS target, which allows it on loopback
# only (or with upload.allow_insecure_http).
_REGISTRY: dict[str, tuple[str, str]] = {
    "s3": ("edge.upload.s3", "S3Target"),
    "https": ("edge.upload.https", "HttpTarget"),
    "http": ("edge.upload.https", "HttpTarget"),
    "file": ("edge.upload.directory", "DirectoryTarget"),
}


def open_target(uri: str, config: UploadConfig | None = None) -> Target:
    """The target a URI names: ``s3://bucket/prefix``, ``https://host/path`` (``http://`` on
    loopback only), ``file:///dir``. A URI that cannot work is a ConfigError naming it."""
    try:
        module_name, class_name = _REGISTRY[urlsplit(uri).scheme.lower()]
    except KeyError:
        raise ConfigError(
            f"upload.target: {redact_uri(uri)!r} is not an upload target; use "
            "s3://bucket/prefix, https://host/path or file:///directory"
        ) from None
    cls = getattr(importlib.import_module(module_name), class_name)
    target: Target = cls.from_uri(uri, config or UploadConfig())
    return target


__all__ = ["open_target"]
