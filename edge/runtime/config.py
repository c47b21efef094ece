"""The configuration of ``edge run``: a TOML file, overridden by command-line flags.

Every section is a typed struct; an unknown key or a wrong type is one :class:`ConfigError`
naming the key path (``source.timeout``), never a traceback or a silently ignored typo.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from edge.buffer.config import BufferConfig
from edge.defaults import BUNDLED_MODEL, BUNDLED_SOURCE
from edge.drift import MonitorConfig
from edge.errors import ConfigError
from edge.upload.config import UploadConfig


class Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A config section: unknown keys are errors."""


class SourceConfig(Section):
    #: Camera index ("0"), device ("/dev/video0"), video file, rtsp:// or http(s):// stream,
    #: image directory or glob, or "synthetic:WxH" (a moving test pattern).
    uri: str = str(BUNDLED_SOURCE)
    #: Pace a file at its frame rate and drop frames like a live source would.
    realtime: bool = False
    #: Frames held between capture and processing; a live source keeps only the latest.
    queue: int = msgspec.field(default=2)
    #: Watchdog: no frame for this many seconds → reconnect.
    timeout: float = 5.0
    #: Reconnect backoff: first delay, cap (seconds), doubled per failure, with ±25% jitter.
    backoff: float = 0.5
    backoff_max: float = 30.0
    #: Frames per second of a synthetic source or an image directory.
    fps: float = 15.0
    #: FFmpeg options for streams, e.g. {rtsp_transport = "tcp"}.
    options: dict[str, str] = msgspec.field(default_factory=dict)


class ModelConfig(Section):
    path: str = str(BUNDLED_MODEL)
    backend: Literal["auto", "onnx", "tflite"] = "auto"
    #: Threads of the runtime's own pool; None lets the runtime choose.
    threads: int | None = 1


class GateConfig(Section):
    enabled: bool = True
    #: Override the calibrated threshold on the gate's score (higher accepts more).
    threshold: float | None = None
    #: A frame whose perceptual hash has not changed for this many frames is a frozen feed.
    frozen_frames: int = 30
    #: Hashes within this Hamming distance count as unchanged: a video keyframe re-encodes a
    #: still picture and moves a few of its 64 bits.
    frozen_radius: int = 8


class PolicyConfig(Section):
    #: Calibrated confidence under which a frame goes to REVIEW (default: the calibrated one).
    review_confidence: float | None = None
    #: Per-label thresholds, overriding ``review_confidence``.
    class_confidence: dict[str, float] = msgspec.field(default_factory=dict)
    #: Labels that cannot occur at this station: predicting one sends the frame to REVIEW.
    impossible_labels: list[str] = msgspec.field(default_factory=list)
    #: Of a run of REJECTs with the same reason, hand the first and then every n-th to the
    #: buffer, so that a dead camera does not flood it.
    reject_sample_every: int = 30


class MetricsConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    #: 0 picks a free port (printed at start).
    port: int = 9108


class Config(Section):
    #: Names this device in uploads and records.
    device: str = msgspec.field(default_factory=socket.gethostname)
    #: Where the buffer and the local outbox live.
    data_dir: str = "edge-data"
    #: One JSON line per frame here ("-" for stdout); None writes nothing.
    results: str | None = None
    max_frames: int | None = None
    source: SourceConfig = msgspec.field(default_factory=SourceConfig)
    model: ModelConfig = msgspec.field(default_factory=ModelConfig)
    gate: GateConfig = msgspec.field(default_factory=GateConfig)
    policy: PolicyConfig = msgspec.field(default_factory=PolicyConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    monitor: MonitorConfig = msgspec.field(default_factory=MonitorConfig)
    buffer: BufferConfig = msgspec.field(default_factory=BufferConfig)
    upload: UploadConfig = msgspec.field(default_factory=UploadConfig)

    def __post_init__(self) -> None:
        checks = {
            "source.queue": self.source.queue >= 1,
            "source.timeout": self.source.timeout > 0,
            "source.backoff": 0 < self.source.backoff <= self.source.backoff_max,
            "source.fps": self.source.fps > 0,
            "model.threads": self.model.threads is None or self.model.threads >= 1,
            "gate.frozen_frames": self.gate.frozen_frames >= 1,
            "gate.frozen_radius": 0 <= self.gate.frozen_radius <= 64,
            "policy.reject_sample_every": self.policy.reject_sample_every >= 1,
            "metrics.port": 0 <= self.metrics.port <= 65535,
            "max_frames": self.max_frames is None or self.max_frames >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise msgspec.ValidationError(f"value out of range - at `$.{key}`")
        thresholds = {"policy.review_confidence": self.policy.review_confidence}
        thresholds.update(
            {f"policy.class_confidence.{k}": v for k, v in self.policy.class_confidence.items()}
        )
        for key, value in thresholds.items():
            if value is not None and not 0 <= value <= 1:
                raise msgspec.ValidationError(f"must be in [0, 1] - at `$.{key}`")


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] = {}) -> Config:
    """The config of ``path`` (TOML; None for the defaults) with ``overrides`` applied, given
    as dotted key paths: ``{"source.uri": "rtsp://...", "model.backend": "onnx"}``."""
    doc: dict[str, Any] = {}
    where = "config"
    if path is not None:
        where = str(path)
        try:
            doc = msgspec.toml.decode(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        except msgspec.DecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for key, value in overrides.items():
        if value is not None:
            _set(doc, key.split("."), value)
    try:
        return msgspec.convert(doc, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {_readable(str(exc))}") from exc


def _set(doc: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        doc = doc.setdefault(key, {})
    doc[keys[-1]] = value


def _readable(message: str) -> str:
    """msgspec says "Expected `int`, got `str` - at `$.source.queue`"; users want the key first."""
    what, sep, at = message.rpartition(" - at `$.")
    if not sep:
        what, at = message, ""
    key = at.rstrip("`").replace("[", ".").replace("]", "")
    unknown = what.partition("Object contains unknown field ")[2]
    if unknown:
        return f"{key}.{unknown.strip('`')}: unknown key".lstrip(".")
    return f"{key}: {what[0].lower()}{what[1:].replace('`', '')}"
