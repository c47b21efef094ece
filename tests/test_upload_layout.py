"""Object keys, sidecars, manifests and the [upload] config: no store involved."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest
from _upload_outbox import make_record
from hypothesis import given
from hypothesis import strategies as st

from edge.errors import ConfigError
from edge.upload import UploadConfig, Window, default_target, layout, open_target
from edge.upload.target import redact, redact_uri, strip_userinfo

IMAGE = b"\xff\xd8 not really a jpeg \xff\xd9"
SHA = hashlib.sha256(IMAGE).hexdigest()
SAFE_KEY = re.compile(r"^[A-Za-z0-9._/-]+$")


def test_image_key_is_content_addressed_under_device_model_and_utc_date() -> None:
    r = make_record(0, IMAGE)  # captured 2025-11-22 08:26:40 UTC
    assert (
        layout.image_key("fleet/frames", r)
        == f"fleet/frames/line-3/fashion-line/2025/11/22/{SHA}.jpg"
    )
    assert layout.sidecar_key("", r) == f"line-3/fashion-line/2025/11/22/{SHA}.json"
    assert layout.content_type(r) == "image/jpeg"


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc",
        "..",
        ".",
        "a/../../b",
        "/abs/path",
        "line\x00-3",
        "line\n3\r\t",
        "..\\..\\windows",
        "",
        "   ",
        "\u2215etc\u2215passwd",  # a division slash, looks like "/"
        "é" * 200,
    ],
)
def test_hostile_device_model_and_label_cannot_leave_their_segment(hostile: str) -> None:
    r = make_record(1, IMAGE, device=hostile, model=hostile, label=hostile)
    key = layout.image_key("p", r)
    parts = key.split("/")
    # prefix, device, model, yyyy, mm, dd, file: always seven segments, none of them special.
    assert len(parts) == 7
    assert parts[0] == "p"
    assert parts[-1] == f"{SHA}.jpg"
    for part in parts:
        assert part not in ("", ".", "..")
        assert not part.startswith(".")
        assert SAFE_KEY.match(part), part
        assert len(part) <= 80
    assert layout.manifest_key("p", hostile, "b").split("/")[:1] == ["p"]
    assert len(layout.manifest_key("p", hostile, "b").split("/")) == 4


def test_sanitize_keeps_ordinary_names() -> None:
    assert layout.sanitize("line-3.station_B") == "line-3.station_B"
    assert re.fullmatch(r"T-shirt_top-[0-9a-f]{8}", layout.sanitize("T-shirt/top"))
    assert re.fullmatch(r"cafe-[0-9a-f]{8}", layout.sanitize("café"))


# Ids that the first sanitiser mapped onto one another ("站点一" and "站点二" both to "unknown",
# "line/3" onto "line_3") or that are hard in some other way.
TRICKY_IDS = [
    "站点一",
    "站点二",
    "站点一 ",
    "line/3",
    "line_3",
    "line 3",
    "line\\3",
    "line:3",
    "line_3_",
    "_line_3",
    "café",
    "cafe\u0301",  # the same word, decomposed: a different id
    "cafe",
    "Ωmega",
    "mega",
    "",
    " ",
    ".",
    "..",
    "...",
    ".hidden",
    "hidden",
    "a/../b",
    "a_.._b",
    "unknown",
    "x" * 80,
    "x" * 81,
    "x" * 200,
    "x" * 199 + "y",
    "\ud800",  # a lone surrogate, as os.fsdecode makes of undecodable bytes
]
SAFE_IDS = ["line-3", "line-3.station_B", "cam01", "fashion-line", "A" * 80, "v1.2", "unknown"]


def test_distinct_device_ids_no_longer_share_a_key_part() -> None:
    """Regression: 站点一 and 站点二 both became ``unknown/``, line/3 and line_3 one segment."""
    parts = [layout.sanitize(i) for i in TRICKY_IDS]
    assert len(set(parts)) == len(TRICKY_IDS), parts
    for original, part in zip(TRICKY_IDS, parts, strict=True):
        assert SAFE_KEY.match(part), (original, part)
        assert part not in ("", ".", "..")
        assert not part.startswith(".")
        assert len(part) <= 80
    # Readable where anything readable was there, and the same every time.
    assert re.fullmatch(r"line_3-[0-9a-f]{8}", layout.sanitize("line/3"))
    assert layout.sanitize("line/3") == layout.sanitize("line/3")
    digest = hashlib.sha256("站点一".encode()).hexdigest()[:8]
    assert layout.sanitize("站点一") == f"unknown-{digest}"
    keys = {layout.image_key("p", make_record(0, IMAGE, device=i)) for i in TRICKY_IDS}
    assert len(keys) == len(TRICKY_IDS)
    manifests = {layout.manifest_key("p", i, "b") for i in TRICKY_IDS}
    assert len(manifests) == len(TRICKY_IDS)


def test_ids_already_safe_keep_their_layout() -> None:
    for safe in SAFE_IDS:
        assert layout.sanitize(safe) == safe
    r = make_record(0, IMAGE, device="line-3")
    assert layout.image_key("p", r) == f"p/line-3/fashion-line/2025/11/22/{SHA}.jpg"


@given(st.text(), st.text())
def test_sanitize_is_safe_and_tells_ids_apart(a: str, b: str) -> None:
    pa, pb = layout.sanitize(a), layout.sanitize(b)
    for part in (pa, pb):
        assert SAFE_KEY.match(part)
        assert part not in (".", "..")
        assert len(part) <= 80
    if a != b:
        assert pa != pb


# Safe: what sanitize always kept, so existing buckets keep their layout (no leading dot or
# underscore, no trailing underscore: those it always trimmed).
@given(st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,78}[A-Za-z0-9.-])?", fullmatch=True))
def test_sanitize_leaves_safe_ids_alone(safe: str) -> None:
    assert layout.sanitize(safe) == safe


def test_record_with_bad_sha_or_extension_is_refused() -> None:
    r = make_record(0, IMAGE)
    with pytest.raises(ValueError, match="sha256"):
        layout.image_key("", replace(r, sha256="../" + SHA[3:]))
    with pytest.raises(ValueError, match="extension"):
        layout.image_key("", replace(r, extension="jpg/../x"))


@pytest.mark.parametrize("prefix", ["a/../b", "./x", "a b", "x/\x00"])
def test_operator_prefix_with_traversal_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"upload\.target"):
        layout.split_prefix(prefix)
    assert layout.split_prefix("/fleet//frames/") == "fleet/frames"


def test_batch_id_is_deterministic_and_order_independent() -> None:
    records = [make_record(i, bytes([i]) * 10) for i in range(5)]
    a = layout.batch_id(records)
    assert a == layout.batch_id(list(reversed(records)))
    assert a != layout.batch_id(records[:4])
    assert re.match(r"^\d{8}T\d{6}Z-[0-9a-f]{16}$", a)
    assert a.startswith("20251122T082640Z")  # the oldest capture


def test_manifest_is_a_label_studio_import_with_the_prediction() -> None:
    records = [make_record(i, bytes([i]) * 10) for i in range(3)]
    # The same image twice is one object and one task.
    records.append(make_record(3, bytes([0]) * 10))
    body = layout.manifest(records, lambda key: f"s3://bucket/{key}", "pre")
    tasks = json.loads(body)
    assert len(tasks) == 3
    t = tasks[1]
    r = records[1]
    assert t["data"]["image"] == f"s3://bucket/{layout.image_key('pre', r)}"
    assert t["data"]["sidecar"] == f"s3://bucket/{layout.sidecar_key('pre', r)}"
    assert t["data"]["captured_at"] == "2025-11-22T08:26:40.500000Z"
    (prediction,) = t["predictions"]
    assert prediction["model_version"] == "fashion-line 1.0"
    assert prediction["score"] == r.metadata["confidence"]
    assert prediction["result"] == [
        {
            "from_name": "choice",
            "to_name": "image",
            "type": "choices",
            "value": {"choices": [r.label]},
        }
    ]


def test_sidecar_carries_metadata_and_where_the_image_is() -> None:
    r = make_record(2, IMAGE)
    doc = json.loads(layout.sidecar(r, "s3://b/k.jpg", len(IMAGE)))
    assert doc["image"] == "s3://b/k.jpg"
    assert doc["sha256"] == SHA
    assert doc["bytes"] == len(IMAGE)
    assert doc["top_k"] == [["Pullover", 0.55], ["Coat", 0.2]]
    # Same record, same bytes: a retry overwrites the object with itself.
    assert layout.sidecar(r, "s3://b/k.jpg", len(IMAGE)) == layout.sidecar(
        r, "s3://b/k.jpg", len(IMAGE)
    )


# -- config ---------------------------------------------------------------------------------


def test_config_defaults_and_unknown_keys() -> None:
    c = msgspec.convert({}, UploadConfig)
    assert c.target is None
    assert c.interval == 60
    assert c.batch_size == 50
    with pytest.raises(msgspec.ValidationError, match="intervl"):
        msgspec.convert({"intervl": 5}, UploadConfig)


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("interval", 0, "upload.interval"),
        ("batch_size", -1, "upload.batch_size"),
        ("bandwidth", 0, "upload.bandwidth"),
        ("window", "9:00-17:00", "upload.window"),
        ("window", "24:00-01:00", "upload.window"),
        ("backoff_max", 0.5, "upload.backoff_max"),
    ],
)
def test_bad_config_names_the_key(field: str, value: object, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        UploadConfig(**{field: value})  # type: ignore[arg-type]


def test_config_repr_hides_credentials() -> None:
    c = UploadConfig(access_key="AKIAEXAMPLE", secret_key="s3cr3t-value", bearer_token="tok-123")
    for text in (repr(c), str(c), f"{c}"):
        assert "s3cr3t-value" not in text
        assert "AKIAEXAMPLE" not in text
        assert "tok-123" not in text
    assert "secret_key='***'" in repr(c)
    assert set(c.secrets()) == {"AKIAEXAMPLE", "s3cr3t-value", "tok-123"}


def test_window_inside_outside_and_across_midnight() -> None:
    day = Window.parse("09:00-17:00")
    night = Window.parse("22:00-06:00")

    def at(h: int, m: int = 0) -> dt.datetime:
        return dt.datetime(2025, 11, 22, h, m)

    assert day.contains(at(9))
    assert not day.contains(at(17))
    assert day.seconds_until_open(at(8, 30)) == 1800
    assert day.seconds_until_open(at(18)) == 15 * 3600
    assert night.contains(at(23))
    assert night.contains(at(5, 59))
    assert not night.contains(at(12))
    assert night.seconds_until_open(at(21)) == 3600
    assert Window.parse("00:00-00:00").contains(at(13))


def test_target_uris(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=r"upload\.target"):
        open_target("ftp://host/x")
    with pytest.raises(ConfigError, match="https://"):
        open_target("http://example.com/upload")  # clear text off loopback
    with pytest.raises(ConfigError, match="token"):
        open_target("https://user:pw@example.com/upload")
    with pytest.raises(ConfigError, match="credentials"):
        open_target("s3://bucket/prefix", UploadConfig())
    with pytest.raises(ConfigError, match="bucket name"):
        open_target("s3://Bucket_/x", UploadConfig(access_key="a", secret_key="b"))
    with pytest.raises(ConfigError, match="AWS_SECRET_ACCESS_KEY") as refused:
        open_target("s3://AKIA:s3cr3t@bucket/x", UploadConfig(access_key="a", secret_key="b"))
    assert "s3cr3t" not in str(refused.value)  # keys in the URI are refused, never shown
    with pytest.raises(ConfigError, match="prefix segment"):
        open_target("s3://bucket/../x", UploadConfig(access_key="a", secret_key="b"))
    with pytest.raises(ConfigError, match="absolute"):
        open_target("file://relative/dir")
    assert default_target("/data").endswith("/data/outbox")
    assert strip_userinfo("https://u:p@h:1/x") == "https://h:1/x"
    assert redact("key ABCD and abc", ["ABCD", "abc"]) == "key *** and abc"


@pytest.mark.parametrize(
    ("uri", "secrets"),
    [
        ("s3://AKIAEXAMPLE:MySecret@fleet/pre", ["MySecret", "AKIAEXAMPLE"]),
        # Regression: a secret key with a '/' (most AWS keys have one) ends urlsplit's userinfo
        # early, so the whole key was shown as if it were host and path.
        (
            "s3://AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@fleet/pre",
            ["AKIAEXAMPLE", "wJalrXUtnFEMI", "K7MDENG", "bPxRfiCYEXAMPLEKEY"],
        ),
        ("s3://AKIAEXAMPLE:ab?c#d@fleet/pre", ["AKIAEXAMPLE", "ab?c#d"]),
        ("s3://fleet/pre?token=tok-SECRET-1", ["tok-SECRET-1"]),
        (
            "s3://Bad_Bucket/pre?X-Amz-Credential=AKIAQUERY%2F20251122&X-Amz-Signature=5d67cafe",
            ["AKIAQUERY", "5d67cafe"],
        ),
        ("s3://fleet/pre#tok-SECRET-2", ["tok-SECRET-2"]),
        ("https://user:MySecret@upload.example.com/in", ["MySecret"]),
        ("https://upload.example.com/in?token=tok-SECRET-3", ["tok-SECRET-3"]),
        ("http://upload.example.com/in?token=tok-SECRET-4", ["tok-SECRET-4"]),
        ("http://user:My/Secret@upload.example.com/in", ["My/Secret", "Secret"]),
        ("file:///outbox?token=tok-SECRET-5", ["tok-SECRET-5"]),
        ("file://user:MySecret@host/outbox", ["MySecret"]),
        ("ftp://user:MySecret@host/x?token=tok-SECRET-6", ["MySecret", "tok-SECRET-6"]),
    ],
)
def test_secrets_in_the_target_uri_are_refused_and_never_shown(
    uri: str, secrets: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credentials are there, so what is refused is the URI itself.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "envkey")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    with pytest.raises(ConfigError, match=r"^upload\.target: ") as refused:
        open_target(uri, UploadConfig())
    message = str(refused.value)
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message, message


def test_uris_are_shown_without_credentials_or_query_values() -> None:
    assert redact_uri("s3://K:se/cr+et@fleet/pre") == "s3://fleet/pre"
    assert (
        redact_uri("https://h/x?token=abc&X-Amz-Signature=def&flag#frag")
        == "https://h/x?token=***&X-Amz-Signature=***&***#***"
    )
    assert redact_uri("rtsp://admin:pw@10.0.0.7:554/stream") == "rtsp://10.0.0.7:554/stream"
    assert redact_uri("/data/line@3.mp4") == "/data/line@3.mp4"
    assert strip_userinfo("rtsp://a:p/w@cam/s") == "rtsp://cam/s"


@pytest.mark.parametrize(
    ("uri", "config", "key"),
    [
        # Regression: an S3 endpoint off loopback in clear was accepted, with the session
        # token in a plain header.
        ("s3://fleet/pre", {"endpoint": "http://10.1.2.3:8333"}, "upload.endpoint"),
        ("s3://fleet/pre", {"endpoint": "http://s3.lab.example"}, "upload.endpoint"),
        ("http://upload.example.com/in", {}, "upload.target"),
        ("http://192.168.1.20:8080/in", {}, "upload.target"),
    ],
)
def test_plain_http_off_loopback_is_refused_for_every_target(
    uri: str, config: dict[str, str], key: str, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = {
        "access_key": "AKIAEXAMPLE",
        "secret_key": "wJalrXUtnFEMI/K7MDENG",
        "session_token": "FwoGZXIvYXdzEsession",
        "bearer_token": "bearer-tok-123",
    }
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: .*allow_insecure_http") as info:
        open_target(uri, UploadConfig(**config, **secrets))  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    for secret in secrets.values():
        assert secret not in str(info.value)

    # A lab may say so explicitly; then every target that opens says it out loud.
    allowed = UploadConfig(**config, **secrets, allow_insecure_http=True)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="edge.upload"):
        for _ in range(2):
            open_target(uri, allowed).close()
    warnings = [r.getMessage() for r in caplog.records if "allow_insecure_http" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert all("in clear" in w for w in warnings)
    for secret in secrets.values():
        assert secret not in caplog.text


def test_plain_http_from_the_environment_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.lab.example:9000")
    with pytest.raises(ConfigError, match=r"^upload\.endpoint: "):
        open_target("s3://fleet/pre", UploadConfig(access_key="akey", secret_key="skey"))


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"]
)
def test_plain_http_on_loopback_needs_no_permission(
    endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.upload"):
        config = UploadConfig(endpoint=endpoint, access_key="akey", secret_key="skey")
        open_target("s3://fleet/pre", config).close()
        open_target(endpoint.replace(":9000", ":9001") + "/in", UploadConfig()).close()
    assert caplog.text == ""


def test_a_file_target_loads_no_network_library(tmp_path: Path) -> None:
    # A fresh interpreter: this one has long imported minio for other tests. The s3:// target
    # opened afterwards shows the check would see the import if it happened.
    code = f"""
import json, sys
from edge.upload import open_target, UploadConfig
network = ("minio", "urllib3", "certifi")
target = open_target({(tmp_path / "outbox").as_uri()!r})
before = [m for m in network if m in sys.modules]
open_target("s3://bucket/x", UploadConfig(access_key="akey", secret_key="skey"))
after = [m for m in network if m in sys.modules]
print(json.dumps([type(target).__name__, before, after]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == ["DirectoryTarget", [], ["minio", "urllib3", "certifi"]]
