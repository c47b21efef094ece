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

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from edge._native import _core
from edge.errors import ConfigError
from edge.judge.calibration import Calibration
from edge.runtime.config import GateConfig, PolicyConfig

Decision = Literal["ACCEPT", "REVIEW", "REJECT"]
#: Review threshold of a model that was never calibrated: its confidence means little.
UNCALIBRATED_REVIEW_CONFIDENCE = 0.5


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
