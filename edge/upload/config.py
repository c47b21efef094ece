"""The ``[upload]`` section of the configuration: where flagged frames go, when and how fast."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

from edge.config import Section, positive, require
from edge.errors import ConfigError

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
# Fields whose values are never shown, not even in a repr that ends up in a log.
SECRET_FIELDS = ("access_key", "secret_key", "session_token", "bearer_token")


@dataclass(frozen=True)
class Window:
    """A daily window in local time, ``start`` included, ``end`` excluded; it may wrap midnight
    ("22:00-06:00"), and start == end means all day."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str, key: str = "upload.window") -> Window:
        m = _WINDOW.match(text.strip())
        if m is None:
            raise ConfigError(f"{key}: expected a daily window 'HH:MM-HH:MM'; got {text!r}")
        h0, m0, h1, m1 = (int(g) for g in m.groups())
        return cls(dt.time(h0, m0), dt.time(h1, m1))

    def contains(self, now: dt.datetime) -> bool:
        t = now.time().replace(second=0, microsecond=0)
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def seconds_until_open(self, now: dt.datetime) -> float:
        """0 inside the window, else the seconds until it next opens."""
        if self.contains(now):
            return 0.0
        opens = now.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        if opens <= now:
            opens += dt.timedelta(days=1)
        return (opens - now).total_seconds()


class UploadConfig(Section):
    """How the uploader ships flagged frames to the fleet's object store.

    ``target`` is ``s3://bucket/prefix``, ``https://host/path`` or ``file:///dir``; None means
    the local outbox ``<data-dir>/outbox``. Credentials never go in the URI (it shows in process
    lists and logs): S3 endpoint, region and credentials default to the standard AWS environment
    variables; the bearer token of an HTTPS target to ``EDGE_UPLOAD_TOKEN``. Plain ``http://``
    (a target or an S3 endpoint) is for loopback only, unless ``allow_insecure_http``.
    """

    target: str | None = None
    interval: float = 60.0  # seconds between periodic uploads
    window: str | None = None  # "HH:MM-HH:MM", local time; None: any time
    bandwidth: int | None = None  # bytes/s over all objects; None: uncapped
    batch_size: int = 50  # records per batch, i.e. per manifest
    parallel: int = 2  # concurrent PUTs: a remote store is latency-bound, not CPU-bound
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    backoff_base: float = 1.0  # first retry delay after a failure, seconds
    backoff_max: float = 300.0
    endpoint: str | None = None  # S3 endpoint URL; else AWS_ENDPOINT_URL(_S3), else AWS
    region: str | None = None  # else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    bearer_token: str | None = None
    ca_file: str | None = None  # PEM bundle for a private CA; the system's CAs otherwise
    # Plain http:// to a host other than loopback: refused unless this is set (a lab network);
    # then every run starts with a warning on stderr.
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        for name in ("interval", "batch_size", "parallel", "connect_timeout", "read_timeout"):
            positive(f"upload.{name}", getattr(self, name))
        positive("upload.backoff_base", self.backoff_base)
        require(
            self.backoff_base <= self.backoff_max < math.inf,
            "upload.backoff_max",
            f"must be ≥ backoff_base ({self.backoff_base:g}) and finite",
            self.backoff_max,
        )
        if self.bandwidth is not None:
            positive("upload.bandwidth", self.bandwidth)  # bytes/s; leave it out for no cap
        if self.window is not None:
            Window.parse(self.window, key="upload.window")

    def daily_window(self) -> Window | None:
        return None if self.window is None else Window.parse(self.window)

    def secrets(self) -> tuple[str, ...]:
        """The credential values set here, for redaction."""
        values = (getattr(self, name) for name in SECRET_FIELDS)
        return tuple(v for v in values if v)

    def __repr__(self) -> str:
        # The default repr would print credentials into any log line that shows the config.
        parts = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            shown = "'***'" if name in SECRET_FIELDS and value else repr(value)
            parts.append(f"{name}={shown}")
        return f"UploadConfig({', '.join(parts)})"

    __str__ = __repr__


def default_target(data_dir: str | Path) -> str:
    """The local outbox next to the buffer: what ``edge run`` uploads to when not told."""
    return (Path(data_dir) / "outbox").resolve().as_uri()


__all__ = ["SECRET_FIELDS", "UploadConfig", "Window", "default_target"]
