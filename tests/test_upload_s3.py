"""The uploader against a real S3 server (SeaweedFS on loopback), with faults.

Results are read back by a path that shares nothing with the uploader's: objects are listed
with a minio client of the test's own and their bytes fetched over the SeaweedFS filer's plain
HTTP API (no S3, no signing). Every test ends with the same check: the bucket holds exactly the
flagged set (images byte-equal, sidecars), each record in exactly one manifest, outbox drained.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _seaweedfs import (
    ACCESS_KEY,
    SECRET_KEY,
    FaultProxy,
    SeaweedFS,
    close_client,
    env_for,
    free_ports,
    running_seaweedfs,
)
from _upload_outbox import FileOutbox, by_sha, check_delivery, fill, photo_jpegs
from _waiting import HANG, finishes, wait_until

from edge.cli import main as edge_main
from edge.records import Stored
from edge.upload import StoreError, UploadConfig, Uploader, open_target
from edge.upload.s3 import S3Target

HERE = Path(__file__).parent
_buckets = itertools.count()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def bucket(seaweed: SeaweedFS) -> str:
    name = f"edge-test-{next(_buckets)}-{os.getpid()}"
    client = seaweed.client()
    try:
        client.make_bucket(name)
        # The first write to a bucket grows its volumes (~1 s): not what the tests time.
        client.put_object(name, "warm-up", io.BytesIO(b"ok"), 2)
    finally:
        close_client(client)
    return name


@pytest.fixture
def aws_env(seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point s3:// targets at the server through the standard AWS variables only."""
    for key, value in env_for(seaweed).items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    return photo_jpegs(60, seed=7)


def check_bucket(
    seaweed: SeaweedFS, bucket: str, expected: dict[str, Stored], images: list[bytes], prefix: str
) -> dict[str, Any]:
    client = seaweed.client()
    try:
        return check_delivery(
            expected,
            by_sha(images),
            lambda: [
                o.object_name
                for o in client.list_objects(bucket, prefix=prefix, recursive=True)
                if o.object_name is not None
            ],
            lambda key: seaweed.filer_get(bucket, key),
            lambda key: f"s3://{bucket}/{key}",
            prefix=prefix.rstrip("/"),
        )
    finally:
        close_client(client)


def count_objects(seaweed: SeaweedFS, bucket: str, prefix: str) -> int:
    client = seaweed.client()
    try:
        return sum(1 for _ in client.list_objects(bucket, prefix=prefix, recursive=True))
    finally:
        close_client(client)


def test_flagged_frames_reach_the_bucket_with_sidecars_and_manifests(
    seaweed: SeaweedFS, bucket: str, aws_env: None, tmp_path: Path, jpegs: list[bytes]
) -> None:
    outbox = FileOutbox(tmp_path / "outbox")
    images = jpegs[:20]
    expected = fill(outbox, images)
    target = open_target(f"s3://{bucket}/fleet/frames", UploadConfig())
    assert isinstance(target, S3Target)
    try:
        uploader = Uploader(outbox, target, UploadConfig(batch_size=8))
        report = uploader.upload_once()
    finally:
        target.close()
    assert report.records == 20
    assert report.manifests == 3
    assert outbox.ids() == []
    found = check_bucket(seaweed, bucket, expected, images, "fleet/frames/")
    assert found == {"manifests": 3, "objects": 43}
    # The manifest is a Label Studio import as is: a list of tasks pointing into the bucket.
    client = seaweed.client()
    try:
        (key,) = [
            o.object_name
            for o in client.list_objects(bucket, prefix="fleet/frames/line-3/manifests/")
        ][:1]
    finally:
        close_client(client)
    assert key is not None
    tasks = json.loads(seaweed.filer_get(bucket, key))
    assert tasks[0]["data"]["image"].startswith(f"s3://{bucket}/fleet/frames/line-3/fashion-line/")


def test_credentials_never_appear_in_logs_errors_or_counters(
    seaweed: SeaweedFS,
    bucket: str,
    tmp_path: Path,
    jpegs: list[bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3's and minio's logs too
    outbox = FileOutbox(tmp_path / "outbox")
    fill(outbox, jpegs[:2])
    wrong_secret = "WRONG-secret-value/+never-shown-42"
    shown: list[str] = []
    cases = [
        # The server refuses the signature: a refusal, not an outage.
        (seaweed.endpoint, wrong_secret, False),
        # Nothing listens: an outage.
        (f"http://127.0.0.1:{free_ports(1)[0]}", SECRET_KEY, True),
    ]
    for endpoint, secret, offline in cases:
        config = UploadConfig(
            endpoint=endpoint,
            access_key=ACCESS_KEY,
            secret_key=secret,
            connect_timeout=1,
            read_timeout=2,
        )
        target = open_target(f"s3://{bucket}/p", config)
        uploader = Uploader(outbox, target, config)
        try:
            with pytest.raises(StoreError) as info:
                uploader.upload_once()
        finally:
            target.close()
        assert info.value.offline is offline, str(info.value)
        shown += [str(info.value), repr(info.value), json.dumps(uploader.counters())]
        shown += [repr(target), repr(config), str(config)]
    shown.append(caplog.text)
    text = "\n".join(shown)
    for secret in (ACCESS_KEY, SECRET_KEY, wrong_secret):
        assert secret not in text
    assert "SignatureDoesNotMatch" in text
    assert outbox.ids() == [0, 1]


def test_server_killed_mid_batch_and_restarted(
    seaweed: SeaweedFS,
    bucket: str,
    aws_env: None,
    tmp_path: Path,
    jpegs: list[bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge.upload")
    images = jpegs[:30]
    restarted = threading.Event()

    class KillsTheServer(FileOutbox):
        reads = 0

        def image_bytes(self, record: Stored) -> bytes:
            self.reads += 1
            if self.reads == 13:  # second batch, a few records in
                seaweed.stop()

                def restart() -> None:
                    time.sleep(0.5)
                    seaweed.start()
                    restarted.set()

                threading.Thread(target=restart, daemon=True).start()
            return super().image_bytes(record)

    outbox = KillsTheServer(tmp_path / "outbox")
    expected = fill(outbox, images)
    config = UploadConfig(
        batch_size=10, interval=0.2, backoff_base=0.2, backoff_max=1.0, connect_timeout=1
    )
    target = open_target(f"s3://{bucket}/p", config)
    uploader = Uploader(outbox, target, config, state_dir=tmp_path / "state")
    uploader.start()
    try:
        assert restarted.wait(60), "the server did not come back"
        wait_until(lambda: not outbox.ids(), poll=0.05)
    finally:
        assert uploader.stop(timeout=HANG)
        target.close()
    c = uploader.counters()
    assert outbox.ids() == [], c
    assert c["failures"] >= 1
    assert c["uploaded_records"] == 30
    check_bucket(seaweed, bucket, expected, images, "p/")
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.upload"]
    assert sum("unreachable" in m for m in lines) == 1, lines  # quiet while offline
    assert sum("reachable again" in m for m in lines) == 1, lines


def test_500s_stalls_and_a_failure_mid_batch_behind_a_fault_proxy(
    seaweed: SeaweedFS, bucket: str, tmp_path: Path, jpegs: list[bytes]
) -> None:
    proxy = FaultProxy(seaweed.s3_port)
    images = jpegs[30:50]
    outbox = FileOutbox(tmp_path / "outbox")
    expected = fill(outbox, images)
    config = UploadConfig(
        endpoint=proxy.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        batch_size=6,
        connect_timeout=1,
        read_timeout=1,
    )
    target = open_target(f"s3://{bucket}/proxied", config)
    uploader = Uploader(outbox, target, config, state_dir=tmp_path / "state")
    try:
        proxy.set_mode("error")
        with pytest.raises(StoreError, match="InternalError") as info:
            uploader.upload_once()
        assert info.value.offline
        assert uploader.counters()["state"] == "offline"

        # The store takes the request and never answers: the read timeout ends the wait.
        proxy.set_mode("stall")
        with pytest.raises(StoreError, match="timed out"):
            finishes(uploader.upload_once)
        assert len(outbox.ids()) == 20

        # Halfway through a batch the store starts failing: some objects land, no manifest.
        proxy.set_mode("pass")
        real_read = outbox.image_bytes
        reads = itertools.count(1)

        def failing_midway(record: Stored) -> bytes:
            if next(reads) == 9:
                proxy.set_mode("error")
            return real_read(record)

        outbox.image_bytes = failing_midway  # type: ignore[method-assign]
        with pytest.raises(StoreError) as info:
            uploader.upload_once()
        outbox.image_bytes = real_read  # type: ignore[method-assign]
        assert 0 < len(outbox.ids()) < 20
        assert (tmp_path / "state" / "journal.json").exists()

        # A stalled store does not hold up stop(): the PUT in flight ends at its read timeout
        # and no other one starts.
        proxy.set_mode("stall")
        connections = proxy.connections
        uploader.start()
        assert wait_until(lambda: proxy.connections > connections)  # a PUT is in flight
        assert uploader.stop(timeout=HANG)

        proxy.set_mode("pass")
        report = uploader.upload_once()
        assert report.records > 0
    finally:
        target.close()
        proxy.close()
    assert outbox.ids() == []
    check_bucket(seaweed, bucket, expected, images, "proxied/")
    c = uploader.counters()
    assert c["failures"] >= 3
    assert c["state"] == "idle"


def test_uploader_process_killed_mid_upload_then_a_fresh_run(
    seaweed: SeaweedFS, bucket: str, aws_env: None, tmp_path: Path, jpegs: list[bytes]
) -> None:
    images = jpegs[:20]
    outbox = FileOutbox(tmp_path / "outbox")
    expected = fill(outbox, images)
    uri = f"s3://{bucket}/killed"
    state = tmp_path / "state"
    total = sum(len(i) for i in images)
    # About 2.5 s for everything: long enough to kill it in the middle of its second batch.
    bandwidth = total * 2 // 5
    argv = [sys.executable, str(HERE / "_upload_child.py"), str(outbox.root), str(state), uri]
    child = subprocess.Popen(
        [*argv, str(bandwidth)],
        cwd=HERE,
        env=env_for(seaweed),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # First batch (5 images, 5 sidecars, 1 manifest) and part of the second.
        def killable() -> bool:
            assert child.poll() is None, child.communicate()
            return count_objects(seaweed, bucket, "killed/") >= 14

        wait_until(killable, poll=0.02)
        assert child.poll() is None, "the uploader finished before it could be killed"
        child.kill()
    finally:
        child.wait(10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    left = len(outbox.ids())
    assert 0 < left < 20
    assert (state / "journal.json").exists()

    config = UploadConfig(batch_size=5)
    target = open_target(uri, config)
    try:
        report = Uploader(outbox, target, config, state_dir=state).upload_once()
    finally:
        target.close()
    assert report.records == left
    assert outbox.ids() == []
    assert not (state / "journal.json").exists()
    assert check_bucket(seaweed, bucket, expected, images, "killed/")["manifests"] == 4


def test_buffer_to_bucket_end_to_end(
    seaweed: SeaweedFS,
    bucket: str,
    aws_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Flagged → Buffer.offer → close → `edge upload --once` → bucket, with the real buffer."""
    buffer_mod = pytest.importorskip("edge.buffer")
    import cv2
    from skimage import data as skdata

    from edge.records import Flagged

    config = buffer_mod.BufferConfig(
        dedup_window=0,
        label_rate=buffer_mod.RateLimit(),
        reason_rate=buffer_mod.RateLimit(),
    )
    photo = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)  # type: ignore[no-untyped-call]
    rng = np.random.default_rng(3)
    data_dir = tmp_path / "edge-data"
    buffer = buffer_mod.Buffer(data_dir, device="line 3/../x", config=config)
    try:
        for i in range(12):
            x, y = (int(v) for v in rng.integers(0, 512 - 120, size=2))
            frame = np.ascontiguousarray(photo[y : y + 120, x : x + 160], dtype=np.uint8)
            item = Flagged(
                image=frame,
                frame=i,
                captured_at=1_763_800_000.0 + i,
                monotonic=float(i),
                decision="REVIEW",
                reason="confidence",
                label="Coat",
                confidence=0.41,
                top_k=[("Coat", 0.41), ("Shirt", 0.3)],
                scores={"default": 2.0},
                stats={"brightness": float(frame.mean() / 255)},
                dhash=int(rng.integers(0, 2**63)),
                model="fashion-line",
                model_version="1.0",
                model_sha256="cd" * 32,
            )
            assert buffer.offer(item)
        assert buffer.flush(30)
        stored = buffer.pending(100)
        images = [buffer.image_bytes(r) for r in stored]
    finally:
        buffer.close()
    assert len(stored) == 12
    expected = {r.sha256: r for r in stored}

    out = tmp_path / "upload.json"
    argv = ["upload", "--once", "--upload", f"s3://{bucket}/e2e", "--data-dir", str(data_dir)]
    assert edge_main([*argv, "--json", str(out)]) == 0
    # One batch at the default size: 12 images, 12 sidecars, 1 manifest.
    assert "uploaded 12 records (25 objects" in capsys.readouterr().out
    assert json.loads(out.read_text())["records"] == 12

    reopened = buffer_mod.Buffer(data_dir, device="line 3/../x", config=config)
    try:
        assert reopened.pending(100) == []  # drained: deleted only after the store confirmed
    finally:
        reopened.close()
    found = check_bucket(seaweed, bucket, expected, images, "e2e/")
    assert found["manifests"] == 1
    client = seaweed.client()
    try:
        listing = client.list_objects(bucket, prefix="e2e/", recursive=True)
        keys = [o.object_name or "" for o in listing]
    finally:
        close_client(client)
    assert len(keys) == 12 * 2 + 1
    # The hostile device id became one harmless segment, told apart from others by its hash.
    device = f"line_3_.._x-{hashlib.sha256(b'line 3/../x').hexdigest()[:8]}"
    assert all(k.startswith(f"e2e/{device}/") for k in keys), keys[:3]


def test_edge_run_delivers_its_flagged_frames_to_the_bucket(
    seaweed: SeaweedFS, bucket: str, tmp_path: Path
) -> None:
    """The whole path: `edge run` on the sample video with an s3:// target; every flagged
    frame the buffer stored is in the bucket (image + sidecar, in one manifest), read back
    over the filer's plain HTTP, and the buffer is drained and checks clean."""
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--max-frames", "400", "--no-metrics",
         "--upload", f"s3://{bucket}/fleet", "--device", "line-7", "--json", "run.json"],
        cwd=tmp_path,
        env=env_for(seaweed),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run.json").read_text())
    stored = summary["buffer"]["stored"]
    assert stored > 20
    assert summary["upload"]["uploaded_records"] == stored
    assert summary["buffer"]["records"] == 0  # drained: deleted once the store confirmed
    client = seaweed.client()
    try:
        keys = [
            o.object_name
            for o in client.list_objects(bucket, prefix="fleet/", recursive=True)
            if o.object_name is not None
        ]
    finally:
        close_client(client)
    images = [k for k in keys if k.endswith(".jpg")]
    sidecars = {k for k in keys if k.endswith(".json") and "/manifests/" not in k}
    manifests = [k for k in keys if "/manifests/" in k]
    assert len(images) == stored
    assert all(k.startswith("fleet/line-7/fashion-line/") for k in images)
    assert {k.removesuffix(".jpg") + ".json" for k in images} == sidecars
    tasks = [t for m in manifests for t in json.loads(seaweed.filer_get(bucket, m))]
    assert len(tasks) == stored  # each record in exactly one manifest
    for key in images[:5]:
        body = seaweed.filer_get(bucket, key)
        assert hashlib.sha256(body).hexdigest() == key.rsplit("/", 1)[1].removesuffix(".jpg")
        sidecar = json.loads(seaweed.filer_get(bucket, key.removesuffix(".jpg") + ".json"))
        assert sidecar["decision"] in ("REVIEW", "REJECT")
        assert len(sidecar["model_sha256"]) == 64
    check = subprocess.run(
        [sys.executable, "-m", "edge.cli", "buffer", "check", "--data-dir", "edge-data"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr


# -- secrets ---------------------------------------------------------------------------------

SESSION_TOKEN = "FwoGZXIvYXdzEsession+token/never-shown-5"
BEARER_TOKEN = "bearer-token-never-shown-7f3a"
WRONG_SECRET = "wrong-secret/value+never-shown-13"
QUERY = {
    "token": "query-token-never-shown-91",
    "X-Amz-Signature": "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
    "X-Amz-Credential": "AKIAQUERYNEVERSHOWN/20251122/us-east-1/s3/aws4_request",
}
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, BEARER_TOKEN, WRONG_SECRET, *QUERY.values())


def leaks(data: bytes) -> list[str]:
    """The secrets found in ``data``, as they are or URL-encoded."""
    from urllib.parse import quote

    found = []
    for secret in SECRETS:
        forms = {secret, quote(secret, safe=""), quote(secret)}
        if any(form.encode() in data for form in forms):
            found.append(secret)
    return found


def test_no_secret_in_any_output_file_or_object_from_any_source(
    seaweed: SeaweedFS, bucket: str, tmp_path: Path
) -> None:
    """Regression: `edge run --upload 's3://KEY:SECRET@fleet/pre'` showed the secret (a key
    with a '/' defeats the userinfo parsing), and a token in a query string too.

    The real commands, in processes of their own, against the real server and against
    failures, with secrets in every place they can come from: the URI's userinfo and query,
    the [upload] config, the AWS and EDGE_UPLOAD_TOKEN environment variables. Afterwards
    stdout, stderr, every file the commands wrote (journal, buffer, sidecars, outbox,
    summaries) and every object in the bucket are searched for each secret."""
    base_env = {**env_for(seaweed), "EDGE_UPLOAD_TOKEN": BEARER_TOKEN}
    done: list[subprocess.CompletedProcess[str]] = []
    work = tmp_path / "work"
    work.mkdir()

    def edge(*argv: str, env: dict[str, str] = base_env) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "edge.cli", *argv],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        done.append(result)
        return result

    run = ("run", "--max-frames", "50", "--no-metrics")
    query = "&".join(f"{k}={v}" for k, v in QUERY.items())
    refused_uris = [
        f"s3://{ACCESS_KEY}:{SECRET_KEY}@{bucket}/userinfo",
        f"s3://{bucket}/query?{query}",
        f"s3://Bad_Bucket/query?{query}",
        f"https://user:{SECRET_KEY}@upload.example.com/in",
        f"https://upload.example.com/in?{query}",
    ]
    for uri in refused_uris:
        for argv in (
            (*run, "--upload", uri, "--data-dir", "refused"),
            ("upload", "--once", "--upload", uri, "--data-dir", "refused"),
        ):
            r = edge(*argv)
            assert r.returncode == 2, (argv, r.stderr)
            (line,) = r.stderr.splitlines()
            assert ": error: upload.target: " in line

    # Secrets in the environment: the default outbox, then the bucket.
    assert edge(*run, "--data-dir", "outbox-run", "--json", "outbox.json").returncode == 0
    assert list((work / "outbox-run" / "outbox").rglob("*.json"))  # sidecars, manifests
    ok = edge(*run, "--upload", f"s3://{bucket}/env", "--data-dir", "env-run", "--json", "env.json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((work / "env.json").read_text())["upload"]["uploaded_records"] > 0

    # Secrets in the [upload] config (kept outside the directories that are searched).
    config = tmp_path / "secrets.toml"
    config.write_text(
        "[upload]\n"
        f'endpoint = "{seaweed.endpoint}"\n'
        f'access_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
        f'bearer_token = "{BEARER_TOKEN}"\n'
    )
    no_keys = {k: v for k, v in base_env.items() if not k.startswith("AWS_")}
    cfg = edge(
        *run, "--config", str(config), "--upload", f"s3://{bucket}/config",
        "--data-dir", "config-run", "--json", "config.json", env=no_keys,
    )  # fmt: skip
    assert cfg.returncode == 0, cfg.stderr
    assert json.loads((work / "config.json").read_text())["upload"]["uploaded_records"] > 0

    # Failures: nothing listens; the server refuses the signature; a session token it does
    # not know. Each leaves the records (and the journal of the batch) on the device.
    down = {**base_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_ports(1)[0]}"}
    target = f"s3://{bucket}/failing"
    r = edge(*run, "--upload", target, "--data-dir", "failing", "--json", "failing.json", env=down)
    assert r.returncode == 0, r.stderr
    assert "last upload failed" in r.stderr
    once = ("upload", "--once", "--upload", target, "--data-dir", "failing")
    assert edge(*once, "--json", "down.json", env=down).returncode == 1
    wrong = {**base_env, "AWS_SECRET_ACCESS_KEY": WRONG_SECRET}
    r = edge(*once, env=wrong)
    # A HEAD of the journal's manifest comes first; S3 sends no error body for a HEAD.
    assert r.returncode == 1, r.stderr
    assert "AccessDenied" in r.stderr or "SignatureDoesNotMatch" in r.stderr, r.stderr
    r = edge(*once, env={**base_env, "AWS_SESSION_TOKEN": SESSION_TOKEN})
    assert r.returncode == 1, r.stderr
    journal = work / "failing" / "upload" / "journal.json"
    assert journal.exists()
    assert leaks(journal.read_bytes()) == []
    # And the store back: the same batch is finished, the buffer drained.
    r = edge(*once, "--json", "recovered.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((work / "recovered.json").read_text())["records"] > 0

    for r in done:
        assert leaks(r.stdout.encode()) == [], r.args
        assert leaks(r.stderr.encode()) == [], (r.args, r.stderr)
    files = [p for p in work.rglob("*") if p.is_file()]
    assert any(p.name == "index.sqlite" for p in files)
    for path in files:
        assert leaks(path.read_bytes()) == [], path
    client = seaweed.client()
    try:
        names = [
            o.object_name
            for o in client.list_objects(bucket, recursive=True)
            if o.object_name is not None
        ]
    finally:
        close_client(client)
    assert {n.split("/")[0] for n in names} >= {"env", "config", "failing"}
    assert sum(n.endswith(".json") for n in names) > 3  # sidecars and manifests
    for name in names:
        assert leaks(name.encode()) == [], name
        assert leaks(seaweed.filer_get(bucket, name)) == [], name
