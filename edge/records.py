"""What the runtime loop hands on about a frame it flagged, and what the uploader reads back.

These are the contracts between three threads that never wait on each other: the loop
*offers* a :class:`Flagged` frame to a :class:`FlaggedSink` (the durable buffer) without
blocking; the uploader takes :class:`Stored` records from an :class:`Outbox` (the same buffer)
and acknowledges them only once the store confirmed them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

FlagDecision = Literal["REVIEW", "REJECT"]
DriftState = Literal["ok", "warn", "alert"]


@dataclass(frozen=True)
class Flagged:
    """A frame the policy sent to REVIEW or REJECT, with everything that explains why."""

    image: npt.NDArray[np.uint8]  # the camera frame as captured: H×W×3 BGR or H×W grey
    frame: int  # frame id, counted from 0 per source
    captured_at: float  # capture time, seconds since the Unix epoch: the record's date
    # time.monotonic() at capture: what the buffer measures its windows and rate limits on.
    # Not captured_at: an NTP step back of an hour would refuse every frame for that hour.
    monotonic: float
    decision: FlagDecision
    reason: str  # machine-readable, e.g. "camera:dark", "ood:knn", "confidence"
    label: str  # the model's top label (not acted upon for REJECT)
    confidence: float  # calibrated probability of ``label``
    top_k: Sequence[tuple[str, float]]  # calibrated (label, probability), best first
    scores: Mapping[str, float]  # OOD scores and the gate's score
    stats: Mapping[str, float]  # frame statistics of the model's view
    dhash: int  # 64-bit perceptual hash of the model's view (near-duplicate detection)
    model: str  # model name
    model_version: str
    model_sha256: str  # sha256 of the model file that ran
    drift: DriftState = "ok"
    extra: Mapping[str, Any] = field(default_factory=dict)


class FlaggedSink(Protocol):
    """Where the loop hands flagged frames. ``offer`` never blocks: it returns False when the
    frame was not taken (queue full, rate limit, duplicate), and the loop counts it."""

    def offer(self, item: Flagged) -> bool: ...

    def close(self, timeout: float = 5.0) -> None: ...


class NullSink:
    """Takes nothing: flagged frames are counted by the loop and dropped."""

    def offer(self, item: Flagged) -> bool:
        return False

    def close(self, timeout: float = 5.0) -> None:
        pass


@dataclass(frozen=True)
class Stored:
    """A record of the durable buffer, as the uploader sees it."""

    id: int  # the buffer's own key
    sha256: str  # sha256 of the encoded image: the content address in the store
    extension: str  # "jpg" or "png"
    captured_at: float
    device: str
    model: str
    label: str
    decision: FlagDecision
    metadata: Mapping[str, Any]  # the JSON sidecar: everything of :class:`Flagged` but pixels


class Outbox(Protocol):
    """What the uploader needs from the buffer."""

    def pending(self, limit: int) -> list[Stored]:
        """Records not yet acknowledged, oldest first."""
        ...

    def image_bytes(self, record: Stored) -> bytes:
        """The encoded image; raises OSError when it is gone or does not match its sha256."""
        ...

    def acknowledge(self, ids: Sequence[int]) -> None:
        """The store confirmed these records: delete them locally."""
        ...
