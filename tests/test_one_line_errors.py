"""What the machine's state does to a command, through the CLI: a busy port, a read-only data
directory, an output file that cannot be written, a damaged buffer index each give one line on
stderr and exit 2, never a traceback; a reader of standard output that goes away (``| head``)
ends the command quietly, like the standard tools."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_buffer_support import flagged, open_config

from edge.buffer import Buffer
from edge.defaults import BUNDLED_MODEL


def edge(*args: str, cwd: Path, stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str], starts: str) -> str:
    """The one line of stderr of a command that failed on its input, exit 2."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert done.returncode == 2, done.stderr
    assert lines[0].startswith(starts), done.stderr
    return lines[0]


def buffer_with_records(data_dir: Path, n: int = 5) -> None:
    with Buffer(data_dir, device="cam", config=open_config()) as buffer:
        for i in range(n):
            assert buffer.offer(flagged(i))
            buffer.flush(30.0)  # one at a time: the writer's queue is short


def test_a_second_run_on_a_busy_metrics_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = edge("run", "--max-frames", "5", "--metrics-port", str(port), cwd=tmp_path)
    line = one_line(done, f"edge run: error: metrics.port: cannot listen on 127.0.0.1:{port}: ")
    assert "--metrics-port" in line
    assert not (tmp_path / "edge-data").exists()  # a run that cannot start writes nothing


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only directory: a read-only bind mount (root ignores permissions), or chmod."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() == 0:
        mount = ["mount", "--bind", str(path), str(path)]
        if subprocess.run(mount, capture_output=True).returncode:
            pytest.skip("root, but mounting is not permitted here")
        remount = ["mount", "-o", "remount,bind,ro", str(path)]
        if subprocess.run(remount, capture_output=True).returncode:
            subprocess.run(["umount", str(path)], capture_output=True)
            pytest.skip("root, but remounting read-only is not permitted here")
    else:
        path.chmod(0o555)
    yield path
    if os.geteuid() == 0:
        subprocess.run(["umount", str(path)], capture_output=True)
    else:
        path.chmod(0o755)


def test_a_read_only_data_dir_is_one_line(tmp_path: Path, read_only: Path) -> None:
    done = edge("run", "--max-frames", "5", "--no-metrics", "--data-dir", "ro", cwd=tmp_path)
    line = one_line(done, "edge run: error: ro/buffer: cannot open the buffer for writing")
    assert "writable" in line


def test_edge_upload_on_a_read_only_data_dir_is_one_line(tmp_path: Path, read_only: Path) -> None:
    done = edge("upload", "--once", "--data-dir", "ro", cwd=tmp_path)
    one_line(done, "edge upload: error: ro/buffer: cannot open the buffer for writing")


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--max-frames", "5", "--no-metrics"],
        ["bench", "--model", str(BUNDLED_MODEL), "--frames", "5"],
        ["buffer", "stats"],
        ["buffer", "check"],
        ["upload", "--once"],
    ],
    ids=lambda c: " ".join(c[:2]) if c[0] == "buffer" else c[0],
)
def test_a_json_path_that_cannot_be_written_is_refused_before_the_work(
    tmp_path: Path, command: list[str]
) -> None:
    buffer_with_records(tmp_path / "edge-data")
    (tmp_path / "notes.txt").write_text("a file, not a directory")
    done = edge(*command, "--json", "notes.txt/out.json", cwd=tmp_path)
    line = one_line(done, f"edge {command[0]}: error: notes.txt/out.json: cannot create it: ")
    assert line.endswith("notes.txt is not a directory")
    assert not (tmp_path / "edge-data" / "outbox").exists()  # nothing was uploaded


def test_a_json_path_in_a_read_only_directory_is_refused(tmp_path: Path, read_only: Path) -> None:
    buffer_with_records(tmp_path / "edge-data")
    done = edge("buffer", "stats", "--json", "ro/new/stats.json", cwd=tmp_path)
    one_line(done, "edge buffer: error: ro/new/stats.json: cannot write into ")


def test_a_damaged_buffer_index_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "edge-data"
    buffer_with_records(data, 40)
    index = data / "buffer" / "index.sqlite"
    damaged = bytearray(index.read_bytes())
    damaged[4096:] = b"\xa5" * (len(damaged) - 4096)  # page 1 (the header) stays whole
    index.write_bytes(bytes(damaged))
    # The readers say so in one line; a writer (edge run, edge upload) rebuilds the index.
    for command in (["buffer", "ls"], ["buffer", "stats"]):
        done = edge(*command, "--data-dir", "edge-data", cwd=tmp_path)
        one_line(
            done,
            "edge buffer: error: edge-data/buffer/index.sqlite: the buffer index is corrupt",
        )


@pytest.mark.parametrize("command", [["buffer", "ls"], ["buffer", "stats", "--json", "s.json"]])
def test_a_reader_of_stdout_that_went_away_ends_the_command_quietly(
    tmp_path: Path, command: list[str]
) -> None:
    buffer_with_records(tmp_path / "edge-data")
    read, write = os.pipe()
    os.close(read)  # `| head` that has read its lines: every write now fails with EPIPE
    try:
        done = edge(*command, cwd=tmp_path, stdout=write)
    finally:
        os.close(write)
    assert done.stderr == ""
    assert done.returncode == 141  # 128 + SIGPIPE, as a shell shows the standard tools'
    if "--json" in command:
        assert json.loads((tmp_path / "s.json").read_text())["records"] == 5


def test_the_summary_of_a_run_is_kept_when_stdout_went_away(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        done = edge(
            "run", "--max-frames", "5", "--no-metrics", "--json", "s.json", cwd=tmp_path,
            stdout=write,
        )  # fmt: skip
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr
    assert done.returncode == 141, done.stderr
    assert json.loads((tmp_path / "s.json").read_text())["frames"] == 5
