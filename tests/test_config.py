"""The config of ``edge run``: TOML plus overrides, and one clear error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.defaults import BUNDLED_MODEL, BUNDLED_SOURCE
from edge.errors import ConfigError
from edge.runtime.config import load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_bundled_model_on_the_sample_video() -> None:
    config = load_config()
    assert Path(config.model.path) == BUNDLED_MODEL
    assert Path(config.source.uri) == BUNDLED_SOURCE
    assert config.data_dir == "edge-data"


def test_file_values_and_overrides_by_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        device = "line-3"
        [source]
        uri = "rtsp://camera/stream"
        timeout = 2.5
        options = { rtsp_transport = "tcp" }
        [policy]
        impossible_labels = ["Sandal"]
        [policy.class_confidence]
        Shirt = 0.9
        """,
    )
    config = load_config(path, {"model.backend": "tflite", "source.timeout": 1.0, "results": None})
    assert config.device == "line-3"
    assert config.source.uri == "rtsp://camera/stream"
    assert config.source.timeout == 1.0  # the flag wins over the file
    assert config.source.options == {"rtsp_transport": "tcp"}
    assert config.model.backend == "tflite"
    assert config.policy.class_confidence == {"Shirt": 0.9}
    assert config.results is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[source]\nqueue = "two"', "source.queue: expected int, got str"),
        ("[source]\nqeue = 2", "source.qeue: unknown key"),
        ("[sorce]\nuri = '0'", "sorce: unknown key"),
        ("[model]\nbackend = 'tensorrt'", "model.backend: invalid enum value 'tensorrt'"),
        (
            "[policy.class_confidence]\nShirt = 1.5",
            "policy.class_confidence.Shirt: must be in [0, 1]; got 1.5",
        ),
        ("[source]\ntimeout = -1.0", "source.timeout: must be > 0 and finite; got -1.0"),
        ("[metrics]\nport = 70000", "metrics.port: must be in [0, 65535]; got 70000"),
        ("[buffer]\nmax_bytes = -1", "buffer.max_bytes: must be ≥ 1 and finite; got -1"),
        (
            "[buffer.label_rate]\nper_minute = -1",
            "buffer.label_rate.per_minute: must be ≥ 0 and finite; got -1",
        ),
        ("[buffer]\ndrift_boost = nan", "buffer.drift_boost: must be ≥ 1 and finite; got nan"),
        ("[upload]\ninterval = inf", "upload.interval: must be > 0 and finite; got inf"),
        ("[upload]\nwindow = '8-5'", "upload.window: expected a daily window 'HH:MM-HH:MM'"),
        ("[gate]\nthreshold = nan", "gate.threshold: must be finite; got nan"),
        ("[model]\nthreads = 100000", "model.threads: must be in [1, 64]; got 100000"),
        ("max_frames = -1", "max_frames: must be ≥ 0 and finite; got -1"),
    ],
)
def test_a_bad_value_is_one_error_naming_its_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[source\nuri =")
    with pytest.raises(ConfigError, match=r"edge.toml: not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"cannot read config .*nope.toml: No such file"):
        load_config(tmp_path / "nope.toml")
