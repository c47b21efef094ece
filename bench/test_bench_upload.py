"""Uploader throughput to a local SeaweedFS (issue 6: at least 50 objects/s).

A record is two objects (the 640×480 JPEG and its JSON sidecar); each batch adds one manifest.
Both rates are reported: records/s (what drains the buffer) and objects/s (what the store
sees, the issue's figure). Images come from an Outbox over real files, so reading them back
from disk is part of the cost, as it is on the device.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The SeaweedFS fixture and the file-backed Outbox are the test suite's; bench/ reuses them
# rather than keeping a second copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedFS, close_client, running_seaweedfs
from _upload_outbox import FileOutbox, fill, photo_jpegs

from edge.upload import UploadConfig, Uploader
from edge.upload.s3 import S3Target

RECORDS = 200
FLOOR_OBJECTS_PER_S = 50.0
BUCKET = "bench"


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        client = server.client()
        try:
            client.make_bucket(BUCKET)
        finally:
            close_client(client)
        yield server


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    return photo_jpegs(RECORDS, size=(640, 480), seed=11)


_rounds = itertools.count()


@pytest.mark.parametrize("parallel", [1, 2])
def test_uploader_objects_per_second(
    benchmark: Any,
    seaweed: SeaweedFS,
    frames: list[bytes],
    tmp_path: Path,
    parallel: int,
) -> None:
    config = UploadConfig(batch_size=50, parallel=parallel)
    target = S3Target(
        BUCKET,
        f"p{parallel}",
        endpoint=seaweed.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        parallel=parallel,
    )
    reports = []

    def setup() -> tuple[tuple[Uploader], dict[str, Any]]:
        outbox = FileOutbox(tmp_path / f"outbox-{next(_rounds)}")
        fill(outbox, frames)
        return (Uploader(outbox, target, config),), {}

    def run(uploader: Uploader) -> None:
        reports.append(uploader.upload_once())

    try:
        benchmark.pedantic(run, setup=setup, rounds=3, iterations=1, warmup_rounds=0)
    finally:
        target.close()
    report = reports[-1]
    assert report.records == RECORDS
    seconds = benchmark.stats.stats.median
    records_per_s = RECORDS / seconds
    objects_per_s = report.objects / seconds
    benchmark.extra_info.update(
        {
            "records_per_s": round(records_per_s, 1),
            "objects_per_s": round(objects_per_s, 1),
            "objects_per_round": report.objects,
            "mb_per_s": round(report.bytes / seconds / 1e6, 2),
            "frame": "640x480 JPEG q90",
        }
    )
    print(
        f"\nupload, parallel={parallel}: {records_per_s:.0f} records/s, "
        f"{objects_per_s:.0f} objects/s, {report.bytes / seconds / 1e6:.1f} MB/s (median)"
    )
    assert objects_per_s >= FLOOR_OBJECTS_PER_S
