"""Settings of the durable buffer: the ``[buffer]`` section of the configuration file."""

from __future__ import annotations

from typing import Literal

import msgspec

from edge.config import Section, at_least, require, within


class RateLimit(Section):
    """How many frames of one label (or one reason) the buffer takes per sliding minute, hour
    and day; 0 is no limit."""

    per_minute: int = 0
    per_hour: int = 0
    per_day: int = 0

    def limits(self) -> tuple[tuple[float, int], ...]:
        """(period in seconds, limit) of the limits that are set."""
        periods = ((60.0, self.per_minute), (3600.0, self.per_hour), (86400.0, self.per_day))
        return tuple((p, n) for p, n in periods if n > 0)

    def __post_init__(self) -> None:
        for name in ("per_minute", "per_hour", "per_day"):
            at_least(name, getattr(self, name), 0)


class BufferConfig(Section):
    """The durable buffer of flagged frames (``[buffer]``).

    Sizes are bytes of encoded images on disk (the index is not counted); times are seconds
    between captures on the monotonic clock (``Flagged.monotonic``), never the wall clock,
    which NTP may step back or forward while the station runs.
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
        at_least("buffer.max_bytes", self.max_bytes, 1)
        at_least("buffer.max_records", self.max_records, 1)
        at_least("buffer.min_free_bytes", self.min_free_bytes, 0)
        within("buffer.dedup_radius", self.dedup_radius, 0, 64)  # bits of a 64-bit hash
        at_least("buffer.dedup_window", self.dedup_window, 0)
        at_least("buffer.drift_boost", self.drift_boost, 1)
        at_least("buffer.queue_size", self.queue_size, 1)
        at_least("buffer.queue_bytes", self.queue_bytes, 1)
        within("buffer.jpeg_quality", self.jpeg_quality, 1, 100)
        within("buffer.png_compression", self.png_compression, 0, 9)
        # Decoding checks the Literal; a struct built in Python is not type-checked.
        require(
            self.format in ("jpeg", "png"), "buffer.format", 'must be "jpeg" or "png"', self.format
        )

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else "png"
