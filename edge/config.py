"""The one way a configuration section is written and checked.

A section is a :class:`Section` (a msgspec struct: a wrong type or an unknown key is refused
while decoding) that lives with its subsystem (``[buffer]`` in :mod:`edge.buffer.config`,
``[upload]`` in :mod:`edge.upload.config`, ...). Its ``__post_init__`` checks ranges with the
helpers below, which raise :class:`~edge.errors.ConfigError` naming the key path and the
allowed range, once: ``buffer.max_bytes: must be ≥ 1 and finite; got -1``. A struct nested in a
section (a rate limit) names its field; decoding a file adds the path to it.
"""

from __future__ import annotations

import math

import msgspec

from edge.errors import ConfigError


class Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A config section: unknown keys are errors."""


def require(ok: bool, key: str, rule: str, value: object) -> None:
    """Refuse ``value`` of ``key`` unless ``ok``; ``rule`` says what is
    allowed. NaN fails every comparison, so a NaN is refused by the rule it breaks."""
    if not ok:
        raise ConfigError(f"{key}: {rule}; got {value!r}")


def at_least(key: str, value: float, low: float) -> None:
    require(value >= low and not math.isinf(value), key, f"must be ≥ {low:g} and finite", value)


def positive(key: str, value: float) -> None:
    """A count, size or duration that must be more than zero (and, for floats, finite: an
    infinite interval is no interval)."""
    require(0 < value < math.inf, key, "must be > 0 and finite", value)


def within(key: str, value: float, low: float, high: float) -> None:
    require(low <= value <= high, key, f"must be in [{low:g}, {high:g}]", value)


__all__ = ["Section", "at_least", "positive", "require", "within"]
