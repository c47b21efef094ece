"""What the network targets (``s3://``, ``https://``) share: their HTTP connections, how a
network failure reads in one line, and credentials from the environment.

Only the network target modules import this one: it loads urllib3 and certifi, which a
device that uploads to a ``file://`` outbox never needs.
"""

from __future__ import annotations

import os

import certifi
import urllib3


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


__all__ = ["connection_pool", "describe", "env"]
