"""What keeps a long-running edge answering and stoppable: a scraper that connects and says
nothing, and SIGTERM while the last upload crawls (a bandwidth cap) or stalls (a store that
takes the bytes and never finishes its answer).

The timeouts here only turn a hang into a failure (see _waiting.py); nothing asserts speed.
"""

from __future__ import annotations

import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _waiting import HANG, wait_until
from test_buffer_support import flagged, open_config

from edge.buffer import Buffer
from edge.runtime.telemetry import Telemetry


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=HANG) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_an_idle_connection_to_the_metrics_port_does_not_block_scrapes() -> None:
    telemetry = Telemetry(lambda: {"counters": {"frames": 7}})
    port = telemetry.serve("127.0.0.1", 0, lambda: (True, "ok"))
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        # A single-threaded server would serve the first idle connection, forever.
        status, text = get(port, "/metrics")
        health, body = get(port, "/healthz")
    finally:
        for s in idle:
            s.close()
        telemetry.close()
    assert status == 200
    assert "edge_frames_total 7.0" in text
    assert (health, body.strip()) == (200, "ok")


# -- SIGTERM during the last upload ----------------------------------------------------------


class StallingStore(http.server.ThreadingHTTPServer):
    """A loopback store that reads each PUT's body, then answers one byte a second, never
    finishing its headers: no read timeout ever fires, the PUT never ends."""

    daemon_threads = True

    def __init__(self) -> None:
        self.puts = threading.Event()
        self.closing = threading.Event()
        super().__init__(("127.0.0.1", 0), StallingHandler)


class StallingHandler(http.server.BaseHTTPRequestHandler):
    server: StallingStore

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.puts.set()
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self.server.closing.wait(1.0):
                self.wfile.write(b"a")
                self.wfile.flush()
        except OSError:
            pass  # the client gave up: what the test wants


@pytest.fixture
def stalling_store() -> Iterator[StallingStore]:
    server = StallingStore()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.closing.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def edge(*args: str, cwd: Path, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def buffer_records(data_dir: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "buffer", "stats", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[1])  # "records N  bytes M"


@pytest.mark.parametrize("slow", ["bandwidth cap", "stalled store"])
def test_sigterm_during_the_last_upload_ends_the_run_and_keeps_the_rest_buffered(
    tmp_path: Path, slow: str, stalling_store: StallingStore
) -> None:
    if slow == "bandwidth cap":
        # 1 kB/s: the first image goes at once, its sidecar would wait ~20 s, the batch hours.
        target = (tmp_path / "store").as_uri()
        upload = f'target = "{target}"\nbandwidth = 1000\n'
    else:
        target = f"http://127.0.0.1:{stalling_store.server_port}/frames"
        upload = f'target = "{target}"\n'
    (tmp_path / "edge.toml").write_text(
        # The periodic upload waits an hour: the only upload is the one at the end.
        f"[upload]\n{upload}interval = 3600.0\n[metrics]\nenabled = false\n"
    )
    results = tmp_path / "r.jsonl"
    frames = 200
    proc = edge(
        "run", "--config", "edge.toml", "--max-frames", str(frames), "--results", "r.jsonl",
        "--json", "s.json", cwd=tmp_path,
    )  # fmt: skip
    journal = tmp_path / "edge-data" / "upload" / "journal.json"

    def in_the_last_upload() -> bool:
        if proc.poll() is not None:
            return True  # ended by itself: the asserts below say what went wrong
        # Every frame is written before the last upload starts; the journal names its batch.
        done = results.exists() and len(results.read_text().splitlines()) == frames
        started = journal.exists() and (slow != "stalled store" or stalling_store.puts.is_set())
        return done and started

    try:
        assert wait_until(in_the_last_upload, timeout=120)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        # The timeout only turns a run that ignores SIGTERM into a failure instead of a hang.
        _, err = proc.communicate(timeout=HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "s.json").read_text())
    stored = summary["flagged"]["stored"]
    left = buffer_records(tmp_path / "edge-data")
    assert left > 0  # the upload was cut short ...
    assert summary["upload"]["uploaded_records"] + left == stored  # ... and nothing was lost


def test_edge_upload_on_a_stalled_store_stops_on_sigterm(
    tmp_path: Path, stalling_store: StallingStore
) -> None:
    data = tmp_path / "edge-data"
    with Buffer(data, device="cam", config=open_config()) as buffer:
        for i in range(6):
            assert buffer.offer(flagged(i))
            buffer.flush(HANG)  # one at a time: the writer's queue is short
    target = f"http://127.0.0.1:{stalling_store.server_port}/frames"
    proc = edge("upload", "--upload", target, "--data-dir", str(data), cwd=tmp_path)
    try:
        assert wait_until(lambda: stalling_store.puts.is_set() or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        # Before: a thread pool's worker, stuck in the PUT, was joined at exit, for ever.
        out, err = proc.communicate(timeout=HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "uploaded 0 records; backlog 6" in out
    assert buffer_records(data) == 6
