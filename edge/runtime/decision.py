"""What the runtime does with a frame: ACCEPT it, send it to human REVIEW, or REJECT it.

- ``REJECT``: the gate refused the frame — a camera fault (dark, blown out, blurred, frozen)
  or an input out of the training distribution. The model's label is not acted upon.
- ``REVIEW``: in distribution, but the calibrated confidence is under the threshold, or a
  guard from the config fired (a label impossible at this station).
- ``ACCEPT``: otherwise.

Every decision carries a machine-readable reason: ``camera:<statistic>``, ``ood:<score>``,
``guard:impossible-label``, ``confidence`` or ``confident``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

import msgspec

from edge._native import _core
from edge.config import Section, at_least, require, within
from edge.errors import ConfigError
from edge.judge.calibration import Calibration

Decision = Literal["ACCEPT", "REVIEW", "REJECT"]
#: Review threshold of a model that was never calibrated: its confidence means little.
UNCALIBRATED_REVIEW_CONFIDENCE = 0.5


class GateConfig(Section):
    """The gate in front of the model (``[gate]``)."""

    enabled: bool = True
    #: Override the calibrated threshold on the gate's score (higher accepts more).
    threshold: float | None = None
    #: A frame whose perceptual hash has not changed for this many frames is a frozen feed.
    frozen_frames: int = 30
    #: Hashes within this Hamming distance count as unchanged: a video keyframe re-encodes a
    #: still picture and moves a few of its 64 bits.
    frozen_radius: int = 8

    def __post_init__(self) -> None:
        if self.threshold is not None:
            require(
                math.isfinite(self.threshold), "gate.threshold", "must be finite", self.threshold
            )
        at_least("gate.frozen_frames", self.frozen_frames, 1)
        within("gate.frozen_radius", self.frozen_radius, 0, 64)


class PolicyConfig(Section):
    """What becomes of a judged frame (``[policy]``)."""

    #: Calibrated confidence under which a frame goes to REVIEW (default: the calibrated one).
    review_confidence: float | None = None
    #: Per-label thresholds, overriding ``review_confidence``.
    class_confidence: dict[str, float] = msgspec.field(default_factory=dict)
    #: Labels that cannot occur at this station: predicting one sends the frame to REVIEW.
    impossible_labels: list[str] = msgspec.field(default_factory=list)
    #: Of a run of REJECTs with the same reason, hand the first and then every n-th to the
    #: buffer, so that a dead camera does not flood it.
    reject_sample_every: int = 30

    def __post_init__(self) -> None:
        if self.review_confidence is not None:
            within("policy.review_confidence", self.review_confidence, 0, 1)
        for label, value in self.class_confidence.items():
            within(f"policy.class_confidence.{label}", value, 0, 1)
        at_least("policy.reject_sample_every", self.reject_sample_every, 1)


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    reason: str
    gate_score: float | None  # None when the gate did not run (uncalibrated model, or off)


class FrozenFeed:
    """A feed whose picture has not changed for ``frames`` frames: a stuck camera, or a
    decoder repeating its last picture. "Not changed" is measured against the first frame of
    the still run (within ``radius`` bits of the perceptual hash), so that a keyframe's
    small re-encoding does not restart the count and a slow drift cannot chain along."""

    def __init__(self, frames: int, radius: int) -> None:
        self.frames, self.radius = frames, radius
        self._anchor: int | None = None
        self._streak = 0

    def update(self, dhash: int) -> bool:
        if self._anchor is not None and _core.hamming(dhash, self._anchor) <= self.radius:
            self._streak += 1
        else:
            self._anchor, self._streak = dhash, 0
        return self._streak >= self.frames


class Policy:
    def __init__(
        self,
        policy: PolicyConfig,
        gate: GateConfig,
        calibration: Calibration | None,
        labels: tuple[str, ...],
    ) -> None:
        unknown = sorted(
            (set(policy.class_confidence) | set(policy.impossible_labels)) - set(labels)
        )
        if unknown:
            raise ConfigError(
                f"policy: labels {unknown} are not the model's; it knows {list(labels)}"
            )
        self.gate = calibration.gate if calibration is not None and gate.enabled else None
        if self.gate is not None and gate.threshold is not None:
            self.gate = replace(self.gate, threshold=gate.threshold)
        default = policy.review_confidence
        if default is None:
            default = (
                calibration.review_confidence
                if calibration is not None
                else UNCALIBRATED_REVIEW_CONFIDENCE
            )
        self.review_confidence = {
            label: policy.class_confidence.get(label, default) for label in labels
        }
        self.impossible = frozenset(policy.impossible_labels)
        self.frozen = FrozenFeed(gate.frozen_frames, gate.frozen_radius)

    def decide(
        self, signals: Mapping[str, float], label: str, confidence: float, dhash: int
    ) -> Verdict:
        """The verdict on one frame. Call once per frame, in order (the frozen-feed check
        remembers the previous frame)."""
        frozen = self.frozen.update(dhash)
        score = None
        if self.gate is not None:
            passes, reason, score = self.gate.check(signals)
            if not passes:
                return Verdict("REJECT", reason, score)
        if frozen:
            return Verdict("REJECT", "camera:frozen", score)
        if label in self.impossible:
            return Verdict("REVIEW", "guard:impossible-label", score)
        if confidence < self.review_confidence[label]:
            return Verdict("REVIEW", "confidence", score)
        return Verdict("ACCEPT", "confident", score)
