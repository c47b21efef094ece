"""What the network targets (``s3://``, ``https://``) share: their HTTP connections, the rule
that clear-text HTTP stays on this machine, how a network failure reads in one line, and
credentials from the environment.

Only the network target modules import this one: it loads urllib3 and certifi, which a
device that uploads to a ``file://`` outbox never needs.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from urllib.parse import urlsplit

import certifi
import urllib3

from edge.errors import ConfigError
from edge.upload.target import redact_uri

log = logging.getLogger("edge.upload")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine, the only place clear-text ``http://`` may go."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_cleartext(url: str, key: str, *, allow_insecure_http: bool) -> None:
    """Refuse ``http://`` to anything but loopback: the frames, the bearer token and the S3
    session token (a plain header) would cross the network readable by anyone on the path.
    ``allow_insecure_http`` (a lab network) lets it through with a warning every time a target
    opens, i.e. at the start of every run."""
    parts = urlsplit(url)
    if parts.scheme != "http" or is_loopback(parts.hostname or ""):
        return
    if not allow_insecure_http:
        raise ConfigError(
            f"{key}: {redact_uri(url)!r} is plain HTTP to another machine: frames and "
            "credentials would cross the network in clear; use https:// (on a lab network "
            "only: allow_insecure_http = true in [upload], or edge upload --allow-insecure-http)"
        )
    log.warning(
        "upload: warning: allow_insecure_http is set: frames and credentials go in clear "
        "to %s; use https:// outside a lab",
        redact_uri(url),
    )


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


def describe(exc: BaseException) -> str:
    """One line for a network failure, without the stack of wrapped exceptions urllib3 adds."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException) and reason is not exc:
        return describe(reason)
    if isinstance(exc, TimeoutError):
        return f"timed out ({exc})" if str(exc) else "timed out"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def env(*names: str) -> str | None:
    """The first of the environment variables ``names`` that is set and not empty."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


__all__ = ["check_cleartext", "connection_pool", "describe", "env", "is_loopback"]
