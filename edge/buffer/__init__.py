"""The durable local buffer of flagged frames: SQLite index + one image file per record.

:class:`Buffer` is what the runtime loop offers flagged frames to (never blocking) and what the
uploader drains; :func:`check` is ``edge buffer check``. See :mod:`edge.buffer.store` for the
on-disk layout and its crash guarantees.
"""

from edge.buffer.buffer import Buffer, buffer_dir
from edge.buffer.check import CheckReport, Problem, check
from edge.buffer.config import BufferConfig, RateLimit
from edge.buffer.retention import balance_key, priority
from edge.buffer.store import FORMAT_VERSION, BufferUnavailable

__all__ = [
    "FORMAT_VERSION",
    "Buffer",
    "BufferConfig",
    "BufferUnavailable",
    "CheckReport",
    "Problem",
    "RateLimit",
    "balance_key",
    "buffer_dir",
    "check",
    "priority",
]
