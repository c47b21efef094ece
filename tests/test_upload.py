"""The uploader against local targets: a directory outbox and a loopback HTTP(S) server.

Crash safety (the journal), unreadable records, backoff, bandwidth, window, thread life, the
HTTPS sink and its token, the CLI. The S3 tests with a real server are in test_upload_s3.py.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import logging
import os
import random
import shutil
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _upload_outbox import FileOutbox, by_sha, check_delivery, dir_keys, fill, photo_jpegs
from _waiting import HANG, wait_until

from edge.cli import main
from edge.errors import ConfigError
from edge.records import Stored
from edge.upload import StoreError, UploadConfig, Uploader, open_target
from edge.upload import cli as upload_cli
from edge.upload import uploader as uploader_module
from edge.upload.directory import DirectoryTarget
from edge.upload.https import HttpTarget


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    return photo_jpegs(40)


def check_dir(root: Path, expected: dict[str, Stored], images: list[bytes]) -> dict[str, Any]:
    return check_delivery(
        expected,
        by_sha(images),
        lambda: dir_keys(root),
        lambda key: (root / key).read_bytes(),
        lambda key: (root / key).resolve().as_uri(),
    )


class FailingTarget(DirectoryTarget):
    """A directory that fails after ``ok`` PUTs (offline) until ``down`` is cleared."""

    def __init__(self, root: Path, ok: int = 0, down: bool = True) -> None:
        super().__init__(root)
        self.ok = ok
        self.down = down
        self.puts = 0
        self.attempts = 0

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.attempts += 1
        if self.down and self.puts >= self.ok:
            raise StoreError(f"{self.uri}: {key}: connection refused", offline=True)
        self.puts += 1
        super().put(key, data, content_type)


def test_directory_target_delivers_everything_and_drains_the_outbox(
    tmp_path: Path, jpegs: list[bytes]
) -> None:
    outbox = FileOutbox(tmp_path / "outbox")
    images = jpegs[:12]
    expected = fill(outbox, images)
    target = open_target((tmp_path / "store").as_uri())
    uploader = Uploader(outbox, target, UploadConfig(batch_size=5))
    report = uploader.upload_once()
    assert report.records == 12
    assert report.manifests == 3
    assert report.objects == 12 * 2 + 3
    assert outbox.ids() == []
    found = check_dir(tmp_path / "store", expected, images)
    assert found == {"manifests": 3, "objects": 27}
    c = uploader.counters()
    assert c["state"] == "idle"
    assert c["uploaded_records"] == 12
    assert c["uploaded_objects"] == 27
    assert c["uploaded_bytes"] == report.bytes
    assert c["backlog"] == 0
    assert c["failures"] == 0
    assert c["last_success"] is not None
    # Nothing left: a second run finds nothing and says so.
    assert uploader.upload_once().records == 0


class AckFails(FileOutbox):
    """The process dies between the manifest and the acknowledgement (once)."""

    crash = True

    def acknowledge(self, ids: Any) -> None:
        if self.crash:
            self.crash = False
            raise RuntimeError("power cut")
        super().acknowledge(ids)


def test_crash_after_the_manifest_lists_no_record_twice(tmp_path: Path, jpegs: list[bytes]) -> None:
    """Regression: with batch ids derived from the contents alone, the retry's batch (now with
    newer records in it) got a new id, and the first records were listed in two manifests."""
    outbox = AckFails(tmp_path / "outbox")
    expected = fill(outbox, jpegs[:4])
    store = tmp_path / "store"
    config = UploadConfig(batch_size=10)
    with pytest.raises(RuntimeError, match="power cut"):
        Uploader(outbox, DirectoryTarget(store), config, state_dir=tmp_path / "state").upload_once()
    assert (tmp_path / "state" / "journal.json").exists()
    assert len(outbox.ids()) == 4  # nothing acknowledged
    expected |= fill(outbox, jpegs[4:9], start=4)  # newer frames arrive meanwhile
    fresh = Uploader(outbox, DirectoryTarget(store), config, state_dir=tmp_path / "state")
    report = fresh.upload_once()
    assert report.records == 9
    assert outbox.ids() == []
    assert not (tmp_path / "state" / "journal.json").exists()
    assert check_dir(store, expected, jpegs[:9])["manifests"] == 2


def test_crash_mid_batch_finishes_the_same_batch_first(tmp_path: Path, jpegs: list[bytes]) -> None:
    outbox = FileOutbox(tmp_path / "outbox")
    expected = fill(outbox, jpegs[:6])
    store = tmp_path / "store"
    config = UploadConfig(batch_size=6, parallel=1)
    broken = FailingTarget(store, ok=5)  # image, sidecar, image, sidecar, image, then down
    with pytest.raises(StoreError):
        Uploader(outbox, broken, config, state_dir=tmp_path / "state").upload_once()
    journal = json.loads((tmp_path / "state" / "journal.json").read_text())
    assert journal["ids"] == [0, 1, 2, 3, 4, 5]
    expected |= fill(outbox, jpegs[6:10], start=6)
    Uploader(outbox, DirectoryTarget(store), config, state_dir=tmp_path / "state").upload_once()
    manifests = sorted((store / "line-3" / "manifests").iterdir())
    assert journal["manifest"].endswith(manifests[0].name) or journal["manifest"].endswith(
        manifests[1].name
    )
    first = json.loads((store / journal["manifest"]).read_text())
    assert sorted(t["data"]["sha256"] for t in first) == sorted(list(expected)[:6])
    assert check_dir(store, expected, jpegs[:10])["manifests"] == 2
    assert outbox.ids() == []


def test_unreadable_image_is_skipped_and_kept(
    tmp_path: Path, jpegs: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    outbox = FileOutbox(tmp_path / "outbox")
    expected = fill(outbox, jpegs[:5])
    damaged = tmp_path / "outbox" / "2.jpg"
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated on disk
    uploader = Uploader(outbox, DirectoryTarget(tmp_path / "store"), UploadConfig(batch_size=2))
    report = uploader.upload_once()
    assert report.records == 4
    assert report.unreadable == 1
    assert outbox.ids() == [2]  # never deleted before a store confirmed it
    del expected[next(sha for sha, r in expected.items() if r.id == 2)]
    check_dir(tmp_path / "store", expected, jpegs[:5])
    assert "record 2 skipped" in caplog.text
    # It does not block the queue, nor is it retried in a loop.
    again = uploader.upload_once()
    assert again.records == 0
    assert uploader.counters()["unreadable"] == 1


def test_offline_store_backs_off_quietly_and_resumes_by_itself(
    tmp_path: Path, jpegs: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.upload")
    outbox = FileOutbox(tmp_path / "outbox")
    expected = fill(outbox, jpegs[:6])
    target = FailingTarget(tmp_path / "store")
    config = UploadConfig(interval=0.05, backoff_base=0.005, backoff_max=0.02, batch_size=4)
    uploader = Uploader(outbox, target, config)
    uploader.start()
    try:
        wait_until(lambda: uploader.counters()["failures"] >= 8)
        c = uploader.counters()
        assert c["state"] == "offline"
        assert c["failures"] >= 8
        assert "connection refused" in c["last_error"]
        assert len(outbox.ids()) == 6
        target.down = False
        wait_until(lambda: not outbox.ids() and uploader.counters()["state"] == "idle")
    finally:
        assert uploader.stop(timeout=HANG)
    check_dir(tmp_path / "store", expected, jpegs[:6])
    c = uploader.counters()
    assert c["state"] == "stopped"
    assert c["consecutive_failures"] == 0
    assert c["uploaded_records"] == 6
    # One line when it went offline, one when it came back: not one per attempt.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()
    assert sum("reachable again" in r.getMessage() for r in caplog.records) == 1


def test_a_bug_in_the_outbox_does_not_kill_the_thread(
    tmp_path: Path, jpegs: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(FileOutbox):
        failures = 3

        def pending(self, limit: int) -> list[Stored]:
            if self.failures:
                self.failures -= 1
                raise sqlite3.OperationalError("database is locked")
            return super().pending(limit)

    outbox = Flaky(tmp_path / "outbox")
    fill(outbox, jpegs[:2])
    config = UploadConfig(interval=0.05, backoff_base=0.005, backoff_max=0.01)
    uploader = Uploader(outbox, DirectoryTarget(tmp_path / "store"), config)
    uploader.start()
    try:
        wait_until(lambda: not outbox.ids())
    finally:
        assert uploader.stop(timeout=HANG)
    assert outbox.ids() == []
    assert uploader.counters()["failures"] == 3
    # The state change and one traceback when it started failing; nothing per retry.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2
    # The traceback goes through the same redaction as every other message.
    assert sum("Traceback (most recent call last)" in r.getMessage() for r in errors) == 1
    assert "database is locked" in errors[0].getMessage()


def test_backlog_is_exact_when_the_outbox_can_count(tmp_path: Path, jpegs: list[bytes]) -> None:
    class Counting(FileOutbox):
        def pending_count(self) -> int:
            return len(self.ids())

    outbox = Counting(tmp_path / "outbox")
    fill(outbox, jpegs[:7])
    target = FailingTarget(tmp_path / "store", ok=5)  # a batch of two and its manifest
    uploader = Uploader(outbox, target, UploadConfig(batch_size=2, parallel=1))
    with pytest.raises(StoreError):
        uploader.upload_once()
    assert uploader.counters()["backlog"] == 5
    target.down = False
    uploader.upload_once()
    assert uploader.counters()["backlog"] == 0


def test_backoff_doubles_up_to_the_cap_with_jitter(tmp_path: Path) -> None:
    config = UploadConfig(backoff_base=1.0, backoff_max=60.0)
    uploader = Uploader(
        FileOutbox(tmp_path), DirectoryTarget(tmp_path / "s"), config, rng=random.Random(1)
    )
    delays = []
    for n in range(1, 10):
        uploader._c["consecutive_failures"] = n
        delays.append(uploader._backoff())
    ceilings = [min(60.0, 2.0 ** (n - 1)) for n in range(1, 10)]
    for d, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= d <= ceiling
    assert len({round(d / c, 6) for d, c in zip(delays, ceilings, strict=True)}) > 1  # jitter


class ThrottleClock:
    """The throttle's clock, in which time passes only while a PUT waits for its turn: what
    the pacing adds up to is then exact, whatever else the machine is doing."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()
        self._read = threading.local()  # what this thread last read, for its wait to add to

    def monotonic(self) -> float:
        with self._lock:
            self._read.now = self.now
            return self.now

    def wait(self, delay: float) -> bool:
        """The stop event's wait: never stopped, it sleeps until its turn has come."""
        with self._lock:
            self.now = max(self.now, self._read.now + delay)
        return False


def test_bandwidth_cap_paces_the_bytes(
    tmp_path: Path, jpegs: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = FileOutbox(tmp_path / "outbox")
    fill(outbox, jpegs[:8])
    rate = 200_000
    clock = ThrottleClock()
    started: list[tuple[float, int]] = []  # each PUT: when, in the throttle's time, and bytes

    class Timed(DirectoryTarget):
        def put(self, key: str, data: bytes, content_type: str) -> None:
            started.append((clock.monotonic(), len(data)))
            super().put(key, data, content_type)

    fake_time = SimpleNamespace(monotonic=clock.monotonic, time=time.time)
    monkeypatch.setattr(uploader_module, "time", fake_time)
    uploader = Uploader(outbox, Timed(tmp_path / "store"), UploadConfig(bandwidth=rate, parallel=2))
    uploader._throttle = uploader_module._Throttle(rate, clock)  # type: ignore[arg-type]
    report = uploader.upload_once()
    assert report.records == 8
    assert sum(n for _, n in started) == report.bytes
    # Every object waits for the bytes before it, across both PUT threads: the last one (the
    # manifest) starts when all the others have had their time at the rate, no sooner, no later.
    *before, (last, _) = sorted(started)
    assert last == pytest.approx(sum(n for _, n in before) / rate)


def test_outside_the_window_it_waits_and_trigger_overrides(
    tmp_path: Path, jpegs: list[bytes]
) -> None:
    import datetime as dt

    outbox = FileOutbox(tmp_path / "outbox")
    fill(outbox, jpegs[:3])
    noon = dt.datetime(2025, 11, 22, 12, 0)
    config = UploadConfig(window="22:00-06:00", interval=0.05)
    uploader = Uploader(outbox, DirectoryTarget(tmp_path / "store"), config, now=lambda: noon)
    uploader.start()
    try:
        assert wait_until(lambda: uploader.counters()["next_attempt"] is not None)
        c = uploader.counters()
        assert c["state"] == "waiting_window"
        # Ten hours to go; it looks at the clock again within the hour.
        assert c["next_attempt"] == pytest.approx(time.time() + 3600, abs=5)
        assert outbox.ids() == [0, 1, 2]
        uploader.trigger()  # on demand: now, window or not
        assert wait_until(lambda: not outbox.ids())
        # Uploaded, then back to waiting for the window: an hour's wait from here.
        assert wait_until(lambda: uploader.counters()["state"] == "waiting_window")
    finally:
        # A long wait for the window is no wait for stop(): the thread ends, not after the hour.
        assert uploader.stop(timeout=HANG)


def test_start_twice_is_an_error_and_stop_is_idempotent(tmp_path: Path) -> None:
    uploader = Uploader(FileOutbox(tmp_path / "o"), DirectoryTarget(tmp_path / "s"))
    uploader.start()
    with pytest.raises(RuntimeError, match="already running"):
        uploader.start()
    assert uploader.stop()
    assert uploader.stop()
    assert uploader.counters()["state"] == "stopped"


def test_directory_target_refuses_keys_outside_its_root(tmp_path: Path) -> None:
    target = DirectoryTarget(tmp_path / "store")
    with pytest.raises(ValueError, match="leaves the outbox"):
        target.put("../escape.jpg", b"x", "image/jpeg")
    assert not (tmp_path / "escape.jpg").exists()


# -- the HTTPS sink ----------------------------------------------------------------------------

TOKEN = "bearer-token-0123456789-never-logged"


class Sink(http.server.ThreadingHTTPServer):
    """A loopback object sink: PUT stores, HEAD answers, every request needs the token."""

    daemon_threads = True

    def __init__(self, token: str) -> None:
        self.objects: dict[str, bytes] = {}
        self.token = token
        self.auth_seen: list[str] = []
        super().__init__(("127.0.0.1", 0), SinkHandler)


class SinkHandler(http.server.BaseHTTPRequestHandler):
    server: Sink

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _authorised(self) -> bool:
        auth = self.headers.get("Authorization", "")
        self.server.auth_seen.append(auth)
        if auth != f"Bearer {self.server.token}":
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return True

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not self._authorised():
            return
        self.server.objects[self.path.lstrip("/")] = body
        self.send_response(201)
        self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        if not self._authorised():
            return
        self.send_response(200 if self.path.lstrip("/") in self.server.objects else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink(TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def sink_keys(sink: Sink, base: str) -> list[str]:
    return [k.removeprefix(base) for k in sink.objects]


def test_http_sink_gets_every_object_with_the_token(
    sink: Sink, tmp_path: Path, jpegs: list[bytes]
) -> None:
    outbox = FileOutbox(tmp_path / "outbox")
    expected = fill(outbox, jpegs[:5])
    base = f"http://127.0.0.1:{sink.server_address[1]}/ingest/v1"
    target = open_target(base, UploadConfig(bearer_token=TOKEN))
    try:
        report = Uploader(outbox, target, UploadConfig(batch_size=3)).upload_once()
    finally:
        target.close()
    assert report.records == 5
    assert set(sink.auth_seen) == {f"Bearer {TOKEN}"}
    check_delivery(
        expected,
        by_sha(jpegs[:5]),
        lambda: sink_keys(sink, "ingest/v1/"),
        lambda key: sink.objects[f"ingest/v1/{key}"],
        lambda key: f"{base}/{key}",
    )


def test_wrong_token_is_an_error_that_never_shows_the_token(
    sink: Sink,
    tmp_path: Path,
    jpegs: list[bytes],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-abcdefghijklmnop"
    monkeypatch.setenv("EDGE_UPLOAD_TOKEN", wrong)
    outbox = FileOutbox(tmp_path / "outbox")
    fill(outbox, jpegs[:2])
    target = open_target(f"http://127.0.0.1:{sink.server_address[1]}/x", UploadConfig())
    uploader = Uploader(outbox, target)
    try:
        with pytest.raises(StoreError) as info:
            uploader.upload_once()
    finally:
        target.close()
    assert not info.value.offline  # refused: a person must act, not a retry
    assert "HTTP 401" in str(info.value)
    c = uploader.counters()
    assert c["state"] == "error"
    assert outbox.ids() == [0, 1]
    shown = " ".join([str(info.value), repr(info.value), json.dumps(c), caplog.text, repr(target)])
    assert wrong not in shown
    assert set(sink.auth_seen) == {f"Bearer {wrong}"}  # it was sent, just never shown


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("TLS test needs openssl to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_https_sink_verifies_tls(tmp_path: Path, jpegs: list[bytes]) -> None:
    cert, key = self_signed(tmp_path)
    server = Sink(TOKEN)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"https://127.0.0.1:{server.server_address[1]}/in"
    try:
        outbox = FileOutbox(tmp_path / "outbox")
        fill(outbox, jpegs[:2])
        # An unknown CA: refused before a byte of the frames (or the token) is sent.
        untrusted = HttpTarget(base, token=TOKEN, connect_timeout=2, read_timeout=2)
        with pytest.raises(StoreError, match=r"(?i)certificate"):
            Uploader(outbox, untrusted).upload_once()
        untrusted.close()
        assert server.objects == {}
        trusted = open_target(base, UploadConfig(bearer_token=TOKEN, ca_file=str(cert)))
        assert Uploader(outbox, trusted).upload_once().records == 2
        trusted.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert len(server.objects) == 2 * 2 + 1


# -- the command -----------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    """The edge command: input errors are one line, exit 2."""
    return main(argv)


def test_cli_once_drains_the_buffer_to_the_target(
    tmp_path: Path,
    jpegs: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "edge-data"
    outbox = FileOutbox(data / "fake-buffer")
    fill(outbox, jpegs[:3])

    from contextlib import contextmanager

    @contextmanager
    def fake_buffer(data_dir: Path) -> Iterator[FileOutbox]:
        assert data_dir == data
        yield outbox

    monkeypatch.setattr(upload_cli, "open_outbox", fake_buffer)
    out = tmp_path / "upload.json"
    code = run_cli(["upload", "--once", "--data-dir", str(data), "--json", str(out)])
    assert code == 0
    assert "uploaded 3 records (7 objects" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["ok"] is True
    assert doc["records"] == 3
    assert doc["target"] == (data / "outbox").resolve().as_uri()  # the default target
    assert doc["counters"]["backlog"] == 0
    assert len(dir_keys(data / "outbox")) == 7
    assert outbox.ids() == []
    with pytest.raises(ConfigError, match=r"upload\.target"):
        upload_cli.cmd_upload(
            argparse.Namespace(upload="ftp://x", data_dir=data, once=True, json=None)
        )


def test_plain_http_off_loopback_is_one_line_and_allowing_it_warns_every_run(
    tmp_path: Path,
) -> None:
    """The commands, in processes of their own: refused with one line (exit 2); allowed by
    ``--allow-insecure-http`` or ``[upload] allow_insecure_http``, a warning on stderr at the
    start of every run. 192.0.2.1 (TEST-NET-1) is never contacted: there is nothing to send."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": "http://192.0.2.1:9000",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEsession-token",
    }
    data = tmp_path / "edge-data"
    data.mkdir()

    def edge(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edge.cli", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    upload = ("upload", "--once", "--upload", "s3://fleet/pre", "--data-dir", str(data))
    refused = edge(*upload)
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith("edge upload: error: upload.endpoint: ")
    assert "allow_insecure_http" in line

    for _ in range(2):
        allowed = edge(*upload, "--allow-insecure-http")
        assert allowed.returncode == 0, allowed.stderr
        assert "allow_insecure_http is set" in allowed.stderr
        assert "http://192.0.2.1:9000" in allowed.stderr

    lab = tmp_path / "lab.toml"
    lab.write_text("[upload]\nallow_insecure_http = true\nconnect_timeout = 0.5\n")
    run = ("run", "--max-frames", "5", "--no-metrics", "--upload", "s3://fleet/pre")
    refused = edge(*run)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.splitlines()[-1].startswith("edge run: error: upload.endpoint: ")
    allowed = edge(*run, "--config", str(lab))
    assert allowed.returncode == 0, allowed.stderr
    assert "allow_insecure_http is set" in allowed.stderr.splitlines()[0]
    for secret in (env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"], "AKIAEXAMPLE"):
        for done in (refused, allowed):
            assert secret not in done.stdout + done.stderr
