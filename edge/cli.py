"""The ``edge`` command.

Exit codes: 0 success, 2 bad usage or bad input (one line on stderr saying what and where),
1 an internal failure (with its traceback).

Each subcommand lives with its subsystem and is imported only when it is the one asked for, so
``edge --help`` and ``edge buffer ls`` load neither OpenCV nor the runtimes nor offline code.
"""

from __future__ import annotations

import argparse
import importlib
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except INPUT_ERRORS as exc:
        print(f"edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        print(f"edge {args.command}: internal error (the traceback above)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
