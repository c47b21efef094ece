"""The ``edge`` command.

Exit codes: 0 success, 2 bad usage or bad input (one line on stderr saying what and where),
1 an internal failure (with its traceback), 141 (128 + SIGPIPE) quietly when the reader of
standard output went away (``edge buffer ls | head``), as the standard tools do.

Each subcommand lives with its subsystem and is imported only when it is the one asked for, so
``edge --help`` and ``edge buffer ls`` load neither OpenCV nor the runtimes nor offline code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from edge.errors import INPUT_ERRORS

#: name -> (module:function that adds the command's arguments, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("edge.runtime.cli:configure", "run the model on a camera, stream, video or images"),
    "buffer": (
        "edge.buffer.cli:configure",
        "look into, check, export or purge the local buffer of flagged frames",
    ),
    "upload": (
        "edge.upload.cli:configure",
        "send flagged frames from the buffer to the fleet's object store",
    ),
    "calibrate": (
        "edge.offline.cli:configure_calibrate",
        "fit temperature, OOD reference and thresholds",
    ),
    "eval": (
        "edge.offline.cli:configure_eval",
        "accuracy, calibration, OOD detection, corruptions",
    ),
    "bench": (
        "edge.benchmark.cli:configure",
        "benchmark the loop on this device against the baselines",
    ),
}


def _configurer(command: str) -> Callable[[argparse.ArgumentParser], None]:
    module, _, function = COMMANDS[command][0].partition(":")
    configure: Callable[[argparse.ArgumentParser], None] = getattr(
        importlib.import_module(module), function
    )
    return configure


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the arguments of the command named in ``argv`` (only that one: the
    others are listed with their help but their modules are not imported)."""
    parser = argparse.ArgumentParser(
        prog="edge",
        description="An inference runtime for cameras on constrained devices: int8 models, an "
        "input gate, calibrated confidence and a durable buffer of the frames that need a human.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        if name == chosen:
            _configurer(name)(p)
    return parser


def _one_line(exc: BaseException, args: argparse.Namespace) -> str | None:
    """The one line for an error that is the user's input or the machine's state (a busy
    port, a read-only disk, a damaged buffer), not a bug of ours; None for a bug."""
    if isinstance(exc, INPUT_ERRORS):
        return str(exc)
    # Only a command that opened the buffer can raise these: no import for the others.
    store, sqlite3 = sys.modules.get("edge.buffer.store"), sys.modules.get("sqlite3")
    if store is not None and isinstance(exc, store.BufferUnavailable):
        return str(exc)
    if sqlite3 is not None and isinstance(exc, sqlite3.DatabaseError):
        data_dir = getattr(args, "data_dir", None)
        where = f"{data_dir}/buffer/index.sqlite: " if data_dir else ""
        return f"{where}cannot read the buffer index: {exc}"
    return None


def _stdout_gone() -> int:
    """The reader of standard output went away: nothing more to say, to anyone. What is
    still buffered for stdout goes nowhere, so that the exit does not fail on it again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except BrokenPipeError:
        # Network targets turn their socket errors into StoreError: one that reaches here
        # is standard output's.
        return _stdout_gone()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = _one_line(exc, args)
        if line is None:
            traceback.print_exc()
            print(f"edge {args.command}: internal error (the traceback above)", file=sys.stderr)
            return 1
        print(f"edge {args.command}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
