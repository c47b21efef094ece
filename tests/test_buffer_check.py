"""The index against the files: the reconciler on open, `edge buffer check [--repair]` on real
damage (truncated, altered, deleted and unknown files), and the other `edge buffer` commands."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_buffer_support import flagged, open_config

from edge.buffer import FORMAT_VERSION, Buffer, check
from edge.cli import main
from edge.errors import DataError, UsageError


def edge_buffer(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`edge buffer ...` through the edge command: input errors are one line, exit 2."""
    code = main(["buffer", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def filled(data_dir: Path, n: int = 6) -> list[int]:
    with Buffer(data_dir, device="d", config=open_config()) as buf:
        for i in range(n):
            assert buf.offer(flagged(i, label=("shirt", "bag")[i % 2]))
        assert buf.flush(10)
        return [r.id for r in buf.pending(100)]


def image_of(data_dir: Path, record: int) -> Path:
    with sqlite3.connect(data_dir / "buffer" / "index.sqlite") as db:
        sha, ext = db.execute(
            "SELECT sha256, extension FROM records WHERE id = ?", (record,)
        ).fetchone()
    db.close()
    return data_dir / "buffer" / "images" / f"{sha}.{ext}"


def damage(data_dir: Path, ids: list[int]) -> dict[str, Path]:
    """One of each: truncated, garbage bytes (same size), deleted, an unknown file, a temp."""
    truncated, garbage, deleted = (image_of(data_dir, i) for i in ids[:3])
    truncated.write_bytes(truncated.read_bytes()[:100])
    garbage.write_bytes(os.urandom(garbage.stat().st_size))
    deleted.unlink()
    orphan = data_dir / "buffer" / "images" / "holiday.jpg"
    orphan.write_bytes(b"not ours")
    temp = data_dir / "buffer" / "tmp" / "x.jpg.123.tmp"
    temp.write_bytes(b"half a")
    return {
        "size": truncated,
        "sha256": garbage,
        "missing": deleted,
        "orphan": orphan,
        "temp": temp,
    }


def test_check_reports_damage_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = filled(tmp_path)
    paths = damage(tmp_path, ids)
    code, out, _ = edge_buffer(
        ["check", "--data-dir", str(tmp_path), "--json", str(tmp_path / "c.json")], capsys
    )
    assert code == 1
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["ok"] is False
    assert doc["records"] == 6
    kinds = {p["kind"]: p for p in doc["problems"]}
    assert set(kinds) == {"size", "sha256", "missing", "orphan", "temp"}
    for kind, path in paths.items():
        assert kinds[kind]["path"] == str(path)
        assert kinds[kind]["repaired"] is False
    assert {kinds[k]["id"] for k in ("size", "sha256", "missing")} == set(ids[:3])
    assert "5 problems" in out
    assert paths["orphan"].exists()
    assert paths["temp"].exists()


def test_repair_quarantines_damage_with_its_metadata_then_check_is_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = filled(tmp_path)
    paths = damage(tmp_path, ids)
    code, out, _ = edge_buffer(["check", "--repair", "--data-dir", str(tmp_path)], capsys)
    assert code == 0, out
    assert out.count("repaired:") == 5
    quarantine = tmp_path / "buffer" / "quarantine"
    names = sorted(p.name.split("-", 1)[1] for p in quarantine.iterdir())
    moved = [paths["size"].name, paths["sha256"].name, paths["orphan"].name]
    sidecars = [f"{paths[k].name}.json" for k in ("size", "sha256", "missing")]
    assert names == sorted(moved + sidecars)
    kept = json.loads(next(quarantine.glob(f"*{paths['missing'].name}.json")).read_text())
    assert kept["id"] == ids[2]
    assert kept["metadata"]["frame"] == 2
    assert not paths["temp"].exists()

    report = check(tmp_path / "buffer")
    assert report.ok
    assert report.problems == []
    assert report.records == 3
    with Buffer(tmp_path, device="d") as buf:
        assert [r.id for r in buf.pending(10)] == ids[3:]


def test_the_reconciler_repairs_on_open(tmp_path: Path) -> None:
    ids = filled(tmp_path)
    paths = damage(tmp_path, ids)
    # What a crash leaves: an image whose row was never committed (its bytes match its name),
    # killed before its sidecar was written (with it, the image would be indexed again).
    leftover = image_of(tmp_path, ids[3])
    with sqlite3.connect(tmp_path / "buffer" / "index.sqlite") as db:
        db.execute("DELETE FROM records WHERE id = ?", (ids[3],))
    db.close()
    leftover.with_name(f"{leftover.name}.json").unlink()

    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        kinds = sorted(p.kind for p in buf.reconciled.problems)
        # Sizes only on open: the same-size garbage waits for a full check.
        assert kinds == ["missing", "orphan", "size"]
        assert all(p.repaired for p in buf.reconciled.problems)
        assert buf.counters()["reconciled"] == 3
        assert buf.counters()["records"] == 3
    assert not leftover.exists()
    assert not paths["temp"].exists()
    report = check(tmp_path / "buffer")
    assert [p.kind for p in report.problems] == ["sha256"]


def test_check_beside_a_running_buffer_reads_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        for i in range(5):
            buf.offer(flagged(i))
        assert buf.flush(10)
        assert check(tmp_path / "buffer").ok
        code, _, err = edge_buffer(["check", "--repair", "--data-dir", str(tmp_path)], capsys)
        assert code == 2
        assert "in use by another process" in err
        assert err.count("\n") == 1
        code, _, err = edge_buffer(["purge", "--yes", "--data-dir", str(tmp_path)], capsys)
        assert code == 2


def test_ls_stats_export_and_purge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = filled(tmp_path, 4)
    d = ["--data-dir", str(tmp_path)]

    code, out, _ = edge_buffer(["ls", *d], capsys)
    assert code == 0
    assert len(out.splitlines()) == 5
    assert "REVIEW" in out
    assert "confidence" in out

    code, out, _ = edge_buffer(["stats", *d, "--json", str(tmp_path / "s.json")], capsys)
    stats = json.loads((tmp_path / "s.json").read_text())
    assert (code, stats["records"], stats["format_version"]) == (0, 4, FORMAT_VERSION)
    assert {k: v["records"] for k, v in stats["by_class"].items()} == {"shirt": 2, "bag": 2}

    code, _, _ = edge_buffer(
        ["export", *d, "--format", "jsonl", "--out", str(tmp_path / "x.jsonl")], capsys
    )
    lines = [json.loads(s) for s in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ids
    assert all(Path(x["path"]).is_file() for x in lines)

    code, out, _ = edge_buffer(["export", *d, "--format", "labelstudio"], capsys)
    tasks = json.loads(out)
    assert len(tasks) == 4
    task = tasks[0]
    assert task["data"]["image"].startswith("/data/local-files/?d=buffer/images/")
    assert (tmp_path / task["data"]["image"].split("?d=")[1]).is_file()
    prediction = task["predictions"][0]
    assert prediction["result"][0]["value"]["choices"] == ["shirt"]
    assert prediction["score"] == 0.5
    assert prediction["model_version"] == "fashion-line@1.0.0"

    code, _, err = edge_buffer(["purge", *d], capsys)
    assert code == 2
    assert "add --yes" in err
    code, out, _ = edge_buffer(["purge", *d, "--yes"], capsys)
    assert (code, out) == (0, "4 records deleted\n")
    assert list((tmp_path / "buffer" / "images").iterdir()) == []
    assert check(tmp_path / "buffer").ok


def test_a_missing_buffer_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = edge_buffer(["ls", "--data-dir", str(tmp_path / "nowhere")], capsys)
    assert code == 2
    assert "no buffer here" in err
    assert err.count("\n") == 1


def test_an_index_of_random_bytes_is_a_problem_for_check_and_rebuilt_on_open(
    tmp_path: Path,
) -> None:
    ids = filled(tmp_path, 2)
    index = tmp_path / "buffer" / "index.sqlite"
    index.write_bytes(os.urandom(8192))
    report = check(tmp_path / "buffer")
    assert [(p.kind, p.repaired) for p in report.problems] == [("index", False)]
    assert "the buffer index is corrupt" in report.problems[0].detail
    with Buffer(tmp_path, device="d") as buf:
        assert buf.rebuilt is not None
        assert "rebuilt 2 records" in buf.rebuilt
        assert len(buf.pending(10)) == len(ids)


def test_a_sqlite_file_that_is_not_a_buffer_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "buffer").mkdir()
    with sqlite3.connect(tmp_path / "buffer" / "index.sqlite") as db:
        db.execute("CREATE TABLE other (x)")
    db.close()
    with pytest.raises(DataError, match="not an edge buffer"):
        Buffer(tmp_path, device="d")


def test_a_newer_format_is_refused_with_what_to_do(tmp_path: Path) -> None:
    filled(tmp_path, 1)
    newer = FORMAT_VERSION + 1
    with sqlite3.connect(tmp_path / "buffer" / "index.sqlite") as db:
        db.execute(f"PRAGMA user_version = {newer}")
    db.close()
    with pytest.raises(DataError, match=rf"version {newer} is newer .* upgrade edge"):
        Buffer(tmp_path, device="d")


def test_repair_needs_the_buffer_closed(tmp_path: Path) -> None:
    with Buffer(tmp_path, device="d"), pytest.raises(UsageError):
        check(tmp_path / "buffer", repair=True)
