"""Settings of the durable buffer: the ``[buffer]`` section of the configuration file."""

from __future__ import annotations

from typing import Literal

import msgspec

from edge.errors import ConfigError


def _at_least(section: str, name: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{section}.{name} must be at least {low:g}; got {value!r}")


class RateLimit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How many frames of one label (or one reason) the buffer takes per sliding minute, hour
    and day; 0 is no limit."""

    per_minute: int = 0
    per_hour: int = 0
    per_day: int = 0

    def limits(self) -> tuple[tuple[float, int], ...]:
        """(period in seconds, limit) of the limits that are set."""
        periods = ((60.0, self.per_minute), (3600.0, self.per_hour), (86400.0, self.per_day))
        return tuple((p, n) for p, n in periods if n > 0)


class BufferConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The durable buffer of flagged frames (``[buffer]``).

    Sizes are bytes of encoded images on disk (the index is not counted); times are seconds of
    capture time (``Flagged.captured_at``), so replayed sources are limited like live ones.
    """

    max_bytes: int = 2_000_000_000
    max_records: int = 100_000
    # Keep at least this much free on the buffer's filesystem, whatever max_bytes says: the
    # device's logs and the database's own journal need room too.
    min_free_bytes: int = 64_000_000
    format: Literal["jpeg", "png"] = "jpeg"
    jpeg_quality: int = 90
    png_compression: int = 1  # 0-9; higher is smaller and much slower
    # Near-duplicates: a frame whose dHash is within dedup_radius bits (of 64) of a frame taken
    # less than dedup_window seconds before is not stored again; a window of 0 turns it off.
    dedup_radius: int = 6
    dedup_window: float = 10.0
    # The label limit applies to REVIEW frames (the label is a prediction someone will check);
    # the reason limit to every frame ("confidence", "camera:dark", "ood:knn", ...).
    label_rate: RateLimit = msgspec.field(
        default_factory=lambda: RateLimit(per_minute=30, per_hour=600, per_day=5000)
    )
    reason_rate: RateLimit = msgspec.field(
        default_factory=lambda: RateLimit(per_minute=60, per_hour=1200, per_day=10000)
    )
    # While the drift monitor says "warn" or "alert", the rate limits are multiplied by this:
    # a drifted period is exactly what the next model must see more of.
    drift_boost: float = 4.0
    # Frames waiting for the writer thread; a full queue refuses (the loop never waits).
    queue_size: int = 32
    queue_bytes: int = 128_000_000  # raw pixels held by the queue, so big frames cannot exhaust RAM

    def __post_init__(self) -> None:
        s = "buffer"
        _at_least(s, "max_bytes", self.max_bytes, 1)
        _at_least(s, "max_records", self.max_records, 1)
        _at_least(s, "min_free_bytes", self.min_free_bytes, 0)
        _at_least(s, "dedup_radius", self.dedup_radius, 0)
        _at_least(s, "dedup_window", self.dedup_window, 0)
        _at_least(s, "drift_boost", self.drift_boost, 1)
        _at_least(s, "queue_size", self.queue_size, 1)
        _at_least(s, "queue_bytes", self.queue_bytes, 1)
        for section, rate in (("label_rate", self.label_rate), ("reason_rate", self.reason_rate)):
            for name in ("per_minute", "per_hour", "per_day"):
                _at_least(f"{s}.{section}", name, getattr(rate, name), 0)
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"buffer.jpeg_quality must be 1-100; got {self.jpeg_quality!r}")
        if not 0 <= self.png_compression <= 9:
            raise ConfigError(f"buffer.png_compression must be 0-9; got {self.png_compression!r}")
        if self.dedup_radius > 64:
            raise ConfigError(f"buffer.dedup_radius is in bits of 64; got {self.dedup_radius!r}")
        if self.format not in ("jpeg", "png"):
            raise ConfigError(f'buffer.format must be "jpeg" or "png"; got {self.format!r}')

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else "png"
