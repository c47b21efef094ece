"""``edge bench``: the JSON it writes (every documented key, sane values), its Markdown, the
side-by-side comparison, and one-line errors for bad arguments. Never asserts speed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import cv2
import msgspec
import numpy as np
import pytest

from edge.benchmark import baselines
from edge.benchmark.cli import main
from edge.benchmark.measure import RSS_SLOPE_MIN_FRAMES, rss_slope_kb_per_1000
from edge.benchmark.report import NO_SLOPE, compare, markdown, winner
from edge.benchmark.schema import SCHEMA, Report, decode, load_report
from edge.cli import build_parser
from edge.defaults import BUNDLED_MODEL
from edge.runtime.telemetry import STAGES

FASHION = BUNDLED_MODEL
#: A file `edge bench --json` wrote before the report was a typed struct (schema 1).
GOLDEN_V1 = Path(__file__).parent / "golden" / "bench-v1.json"
QUICK = ["--frames", "12", "--warmup", "3", "--rounds", "5"]

#: Every key the README documents, as dotted paths (``*``: every stage).
DOCUMENTED = [
    "schema",
    "created",
    "device.cpu",
    "device.machine",
    "device.cores",
    "device.cores_usable",
    "device.isa_flags",
    "device.memory_kb.total",
    "device.os",
    "device.python",
    "device.packages.numpy",
    "device.packages.onnxruntime",
    "device.packages.ai-edge-litert",
    "device.opencv",
    "device.edge_isa",
    "device.load_average",
    "model.name",
    "model.version",
    "model.file",
    "model.backend",
    "model.sha256",
    "model.threads",
    "model.input_shape",
    "model.input_dtype",
    "model.calibrated",
    "source.uri",
    "source.width",
    "source.height",
    "source.warmup",
    "source.frames",
    "startup_ms.runner",
    "startup_ms.model_load",
    "loop.frames",
    "loop.seconds",
    "loop.fps",
    "loop.fps_median",
    "loop.latency_ms.*.p50",
    "loop.latency_ms.*.p95",
    "loop.latency_ms.*.p99",
    "loop.latency_ms.*.mean",
    "loop.cpu.seconds",
    "loop.cpu.ms_per_frame",
    "loop.cpu.percent_of_core",
    "loop.threads_ms_per_frame",
    "loop.queue_depth_mean",
    "loop.decisions",
    "loop.dropped",
    "loop.errors",
    "memory.peak_rss_kb",
    "memory.rss_before_loop_kb",
    "memory.rss_after_warmup_kb",
    "memory.rss_end_kb",
    "memory.rss_slope_kb_per_1000_frames",
    "memory.rss_samples",
    "baselines.runtime.fps",
    "baselines.runtime.latency_ms.p50",
    "baselines.runtime.cpu_ms_per_frame",
    "baselines.runtime.runqueue_ms_per_frame",
    "baselines.runtime.share",
    "baselines.runtime.share_median",
    "baselines.runtime.share_uncontended",
    "baselines.loop_prepare_ms.p50",
    "baselines.preprocess.ours_ms.p50",
    "baselines.preprocess.baseline_ms.p50",
    "baselines.preprocess.speedup",
    "baselines.preprocess.max_abs_diff",
    "baselines.preprocess.agrees",
    "baselines.frame_stats.speedup",
    "baselines.logit_scores.speedup",
    "baselines.ood_scores.speedup",
    "targets.runtime_share.met",
    "targets.overhead_p50_ms.met",
]


def lookup(doc: Any, path: str) -> list[Any]:
    """The values at a dotted path; ``*`` stands for every stage."""
    values = [doc]
    for key in path.split("."):
        keys = STAGES if key == "*" else (key,)
        nxt = []
        for value in values:
            for k in keys:
                assert isinstance(value, dict), f"{path}: {k} is under a {type(value).__name__}"
                assert k in value, f"{path}: no {k!r}"
                nxt.append(value[k])
        values = nxt
    return values


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    out = tmp_path_factory.mktemp("bench")
    json_path, md_path = out / "bench.json", out / "bench.md"
    outputs = ["--json", str(json_path), "--markdown", str(md_path)]
    code = main(["--model", str(FASHION), "--synthetic", "640x480", *QUICK, *outputs])
    assert code == 0
    return json.loads(json_path.read_text()), json_path, md_path


def test_json_has_every_documented_key(run: tuple[dict[str, Any], Path, Path]) -> None:
    doc = run[0]
    for path in DOCUMENTED:
        lookup(doc, path)


def test_json_values_are_sane(run: tuple[dict[str, Any], Path, Path]) -> None:
    doc = run[0]
    assert doc["source"] == {
        "uri": "synthetic:640x480",
        "width": 640,
        "height": 480,
        "warmup": 3,
        "frames": 12,
    }
    assert doc["model"]["calibrated"] is True
    assert len(doc["model"]["sha256"]) == 64
    loop = doc["loop"]
    assert loop["frames"] == 12
    assert sum(loop["decisions"].values()) == 12 + 3  # the runner counts warm-up frames too
    for stage, q in loop["latency_ms"].items():
        assert 0 <= q["p50"] <= q["p95"] <= q["p99"], stage
    assert loop["fps"] > 0
    assert loop["cpu"]["ms_per_frame"] > 0
    assert doc["memory"]["peak_rss_kb"] >= doc["memory"]["rss_end_kb"] > 0
    assert len(doc["memory"]["rss_samples"]) >= 3
    assert doc["startup_ms"]["runner"] > 0
    assert doc["startup_ms"]["model_load"] > 0
    base = doc["baselines"]
    assert base["runtime"]["share"] > 0
    assert base["runtime"]["fps"] > 0
    for key in ("preprocess", "frame_stats", "logit_scores", "ood_scores"):
        assert base[key]["speedup"] > 0, key
        assert base[key]["agrees"] is True, key
        assert base[key]["ours_ms"]["p50"] > 0, key
    assert "edge-infer" in loop["threads_ms_per_frame"]
    assert isinstance(doc["targets"]["overhead_p50_ms"]["met"], bool)


def test_markdown_report(run: tuple[dict[str, Any], Path, Path]) -> None:
    text = run[2].read_text()
    assert text.startswith("# edge bench")
    for stage in STAGES:
        assert f"| {stage} |" in text
    assert "`total` runs from capture to hand-off, so it includes queue wait" in text
    assert "loop / bare runtime" in text
    assert "preprocessing (frame → model input)" in text
    assert "OOD scores" in text
    assert "%" not in text.replace("% of one core", "")  # ratios are all N.NNN×
    assert "MiB" not in text  # memory is all KiB


def test_rss_slope_of_a_short_run_is_not_a_number(run: tuple[dict[str, Any], Path, Path]) -> None:
    doc, _, md_path = run
    assert doc["memory"]["rss_slope_kb_per_1000_frames"] is None  # 12 frames
    assert len(doc["memory"]["rss_samples"]) >= 3  # the samples are there, the slope is not
    assert f"| RSS slope (KiB / 1000 frames) | {NO_SLOPE} |" in md_path.read_text()


def test_report_round_trips_through_json(run: tuple[dict[str, Any], Path, Path]) -> None:
    doc, json_path, _ = run
    report = load_report(json_path)
    assert report.schema == SCHEMA
    text = json.dumps(msgspec.to_builtins(report))
    assert decode(text) == report
    assert json.loads(text) == doc  # every key of schema 1, and nothing more


def test_a_schema_1_file_from_before_the_struct_still_compares() -> None:
    report = load_report(GOLDEN_V1)
    # Read and written back, it is the same document: no key lost, renamed or added.
    assert json.loads(json.dumps(msgspec.to_builtins(report))) == json.loads(GOLDEN_V1.read_text())
    assert report.loop.latency_ms["total"].p50 > 0
    assert report.baselines.preprocess is not None
    assert report.baselines.preprocess.agrees
    text = compare(report, report, names=("old", "again"))
    fps_row = next(line for line in text.splitlines() if line.startswith("| loop fps |"))
    assert fps_row.rstrip().endswith("| 1.000× | higher | tie |")
    markdown(report)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schema=2), "edge bench schema 2, this version reads 1"),
        (lambda d: d.pop("schema"), "not an `edge bench --json` file"),
        (
            lambda d: d["loop"].update(frames="twelve"),
            "not a valid edge bench schema 1 file: Expected `int`, got `str` - at `$.loop.frames`",
        ),
        (lambda d: d.pop("memory"), "not a valid edge bench schema 1 file"),
    ],
)
def test_a_bad_report_is_one_usage_error(
    edit: Any,
    message: str,
    run: tuple[dict[str, Any], Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = copy.deepcopy(run[0])
    edit(bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["--compare", str(run[1]), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{path}: {message}" in err


def test_truncated_json_is_one_usage_error(
    run: tuple[dict[str, Any], Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.json"
    path.write_text(run[1].read_text()[:200])
    assert main(["--compare", str(path), str(run[1])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{path}: not JSON" in err


def test_compare_prints_ratios(
    run: tuple[dict[str, Any], Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, a_path, _ = run
    faster = copy.deepcopy(doc)
    faster["loop"]["fps"] = doc["loop"]["fps"] * 2
    faster["device"]["cpu"] = "another board"
    b_path = tmp_path / "other.json"
    b_path.write_text(json.dumps(faster))
    md = tmp_path / "compare.md"
    assert main(["--compare", str(a_path), str(b_path), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "another board" in out
    assert "| figure | bench | other | other / bench | better | winner |" in out
    fps_row = next(line for line in out.splitlines() if line.startswith("| loop fps |"))
    assert fps_row.rstrip().endswith("| 2.000× | higher | other |")
    assert md.read_text() == out


def test_compare_says_which_way_is_better(run: tuple[dict[str, Any], Path, Path]) -> None:
    a = msgspec.convert(run[0], Report)
    b = msgspec.convert(copy.deepcopy(run[0]), Report)
    b.memory.peak_rss_kb = a.memory.peak_rss_kb * 2  # more memory: worse
    b.loop.latency_ms["total"].p99 = a.loop.latency_ms["total"].p99 / 2  # quicker: better
    rows = {
        line.split(" | ")[0].lstrip("| "): line.rstrip(" |").split(" | ")[-2:]
        for line in compare(a, b, names=("A", "B")).splitlines()
        if line.startswith("| ") and " | " in line
    }
    assert rows["peak RSS (KiB)"] == ["lower", "A"]
    assert rows["total (incl. queue wait) p99 (ms)"] == ["lower", "B"]
    assert rows["CPU use (% of a core)"] == ["neither", "-"]


@pytest.mark.parametrize(
    ("a", "b", "better", "won"),
    [
        (2.0, 1.0, "lower", "B"),
        (2.0, 1.0, "higher", "A"),
        (1, 1, "lower", "tie"),
        (None, 1.0, "lower", "-"),
        (2.0, 1.0, None, "-"),
    ],
)
def test_winner(a: float | None, b: float | None, better: Any, won: str) -> None:
    assert winner(a, b, better, ("A", "B")) == won


def test_image_directory_source(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(tmp_path / f"{i}.png"), rng.integers(0, 255, (60, 80, 3), np.uint8))
    out = tmp_path / "dir.json"
    argv = ["--model", str(FASHION), "--source", str(tmp_path), "--frames", "5", "--warmup", "1"]
    assert main([*argv, "--rounds", "0", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["source"]["frames"] == 5
    assert (doc["source"]["width"], doc["source"]["height"]) == (80, 60)
    assert "preprocess" not in doc["baselines"]  # --rounds 0 skips the kernel baselines


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", str(FASHION), "--frames", "0"], "--frames must be at least 1, got 0"),
        (["--model", str(FASHION), "--synthetic", "1080p"], "--synthetic takes WIDTHxHEIGHT"),
        (
            ["--model", str(FASHION), "--synthetic", "64x64", "--source", "x.mp4"],
            "give --source or --synthetic, not both",
        ),
        ([], "give --model DIR (or --compare A.json B.json)"),
        (["--model", "/nonexistent/model"], "model directory /nonexistent/model does not exist"),
        (["--model", str(FASHION), "--source", "/nonexistent.mp4"], "no such file or directory"),
        (["--compare", "/nonexistent/a.json", "/nonexistent/b.json"], "cannot read"),
        (["--compare", str(FASHION / "manifest.json")] * 1 + ["x"], "not an `edge bench"),
    ],
)
def test_bad_arguments_give_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("edge bench: error: ")
    assert message in err


def test_too_short_a_source_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cv2.imwrite(str(tmp_path / "only.png"), np.zeros((32, 32, 3), np.uint8))
    argv = ["--model", str(FASHION), "--source", str(tmp_path), "--warmup", "3"]
    assert main([*argv, "--rounds", "0"]) == 2
    assert "it needs more than --warmup 3" in capsys.readouterr().err


def test_the_edge_command_parses_bench() -> None:
    argv = ["bench", "--model", "m", "--threads", "2", "--backend", "tflite"]
    args = build_parser(argv).parse_args(argv)
    assert (args.command, args.threads, args.backend, args.frames) == ("bench", 2, "tflite", 300)
    assert callable(args.func)


def test_rss_slope() -> None:
    samples = [(i, 1000 + 3 * i) for i in range(0, 500, 50)]
    assert rss_slope_kb_per_1000(samples) == pytest.approx(3000)
    assert rss_slope_kb_per_1000(samples[:2]) is None


def test_no_rss_slope_from_too_few_frames() -> None:
    # Many samples, but over a few frames: one allocator step would read as a leak.
    few = [(i, 1000 + 4 * (i > 5)) for i in range(RSS_SLOPE_MIN_FRAMES)]
    assert rss_slope_kb_per_1000(few) is None
    assert rss_slope_kb_per_1000([*few, (RSS_SLOPE_MIN_FRAMES, 1004)]) is not None


def test_centre_crop_matches_the_preprocessor() -> None:
    frame = np.arange(7 * 11, dtype=np.uint8).reshape(7, 11)
    assert baselines.centre_crop(frame, (5, 5)).shape == (7, 7)
    assert baselines.centre_crop(frame, (5, 5))[0, 0] == frame[0, 2]
    assert baselines.centre_crop(frame.T, (5, 5)).shape == (7, 7)
