"""The installed package as a user meets it: the bundled default inside it, `edge run` from any
directory, nothing written by a run that cannot start, light imports for the commands that do
not need the heavy parts, a clear word from a source tree without a built core, and the systemd
unit of the README."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

import edge
from edge.defaults import BUNDLED_MODEL, BUNDLED_SOURCE
from edge.model.manifest import Manifest

TREE = Path(__file__).resolve().parents[1]
PACKAGE = Path(str(files("edge")))


def python(code: str, cwd: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def edge_command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `edge` console script of this environment, as a user types it."""
    script = Path(sys.executable).with_name("edge")
    return subprocess.run(
        [str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_the_bundled_default_ships_inside_the_package() -> None:
    for path in (BUNDLED_MODEL, BUNDLED_SOURCE, BUNDLED_SOURCE.with_suffix(".json")):
        assert path.exists()
        assert "bundled" in path.parts, f"{path} is not the package's own copy"
    manifest = Manifest.load(BUNDLED_MODEL)
    manifest.verify()  # every file the manifest lists is there, with its sha256
    shipped = {p.name for p in BUNDLED_MODEL.iterdir()}
    assert shipped == {"manifest.json", *(f.name for f in manifest.files)}


def test_edge_run_with_no_arguments_works_from_any_directory(tmp_path: Path) -> None:
    done = edge_command("run", "--max-frames", "40", "--no-metrics", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "frames" in done.stdout
    assert (tmp_path / "edge-data" / "buffer" / "index.sqlite").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "no-such-video.mp4"], "no such file or directory"),
        (["--model", "no-such-model"], "does not exist"),
    ],
)
def test_a_run_that_cannot_start_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = edge_command("run", "--no-metrics", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def loaded_modules(code: str, cwd: Path) -> set[str]:
    """The modules a fresh interpreter has loaded after ``code``."""
    done = python(f"import sys\n{code}\nprint('\\n', ' '.join(sys.modules))", cwd)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


HEAVY = ("cv2", "onnxruntime", "edge.benchmark", "edge.offline", "edge.runtime")


def test_edge_help_loads_neither_opencv_nor_runtimes_nor_tools(tmp_path: Path) -> None:
    code = "from edge.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    modules = loaded_modules(code, tmp_path)
    assert "edge.cli" in modules
    assert not {m for m in modules if m.startswith(HEAVY)}


def test_edge_run_imports_no_offline_tool(tmp_path: Path) -> None:
    code = (
        "from edge.cli import main\nassert main(['run', '--max-frames', '5', '--no-metrics']) == 0"
    )
    modules = loaded_modules(code, tmp_path)
    assert "edge.runtime.loop" in modules
    assert not {m for m in modules if m.startswith(("edge.offline", "edge.benchmark"))}


def test_a_source_tree_without_a_built_core_says_it_shadows_the_package(tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    shutil.copytree(TREE / "edge", tree / "edge", ignore=shutil.ignore_patterns("*.so", "bundled"))
    shutil.copy(TREE / "pyproject.toml", tree)
    (tree / "cpp").mkdir()
    # -S: no site-packages, so no editable-install finder can hand over another tree's edge.
    done = python("import edge", tree, "-S")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "shadows" in last
    assert "make install" in last
    assert str(tree) in last


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    unit = (TREE / "deploy" / "edge.service").read_text()
    for promise in ("edge run", "Restart=on-failure", "KillSignal=SIGTERM"):
        assert promise in unit
    # systemd checks that ExecStart names an executable: point it at this environment's edge.
    here = tmp_path / "edge.service"
    here.write_text(unit.replace("/opt/edge/bin/edge", str(Path(sys.executable).with_name("edge"))))
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(here)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # an unknown or misspelt key is a warning


def test_the_package_is_the_one_under_test() -> None:
    """Run against a wheel, the suite must import the installed package, not the tree."""
    if os.environ.get("EDGE_TEST_INSTALLED") == "1":
        assert not Path(edge.__file__).resolve().is_relative_to(TREE)
        assert PACKAGE.resolve().is_relative_to(Path(sys.prefix).resolve())
