"""The configuration of ``edge run``: a TOML file, overridden by command-line flags.

Every section is a typed struct; an unknown key or a wrong type is one :class:`ConfigError`
naming the key path (``source.timeout``), never a traceback or a silently ignored typo.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from edge.buffer.config import BufferConfig
from edge.config import Section, at_least
from edge.drift import MonitorConfig
from edge.errors import ConfigError
from edge.model.model import ModelConfig
from edge.runtime.capture import SourceConfig
from edge.runtime.decision import GateConfig, PolicyConfig
from edge.runtime.telemetry import MetricsConfig
from edge.upload.config import UploadConfig

#: The start of a section's own message: the key it is about, then a colon.
_SECTION_KEY = re.compile(r"^[\w.\-]+: ")


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
        if self.max_frames is not None:
            at_least("max_frames", self.max_frames, 0)


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
    """msgspec says "Expected `int`, got `str` - at `$.source.queue`"; users want the key first.
    A section's own check already names its key (``buffer.max_bytes: must be ...``); a struct
    nested in a section names its field, and msgspec the path to it."""
    what, sep, at = message.rpartition(" - at `$.")
    if not sep:
        what, at = message, ""
    key = at.rstrip("`").replace("[", ".").replace("]", "")
    unknown = what.partition("Object contains unknown field ")[2]
    if unknown:
        return f"{key}.{unknown.strip('`')}: unknown key".lstrip(".")
    if _SECTION_KEY.match(what):
        # A section names its own key in full; a nested struct (a rate limit) only its field.
        return what if not key or what.startswith(f"{key}.") else f"{key}.{what}"
    return f"{key}: {what[0].lower()}{what[1:].replace('`', '')}"
