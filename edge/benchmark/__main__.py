"""``python -m edge.benchmark ARGS``: the same as ``edge bench ARGS``."""

import sys

from edge.benchmark.cli import main

sys.exit(main())
