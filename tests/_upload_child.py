"""An uploader in a process of its own, for the test that SIGKILLs it mid-upload.

Usage: python _upload_child.py OUTBOX_DIR STATE_DIR TARGET_URI BANDWIDTH (credentials from the
AWS environment variables). Prints "started" once it is about to upload.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _upload_outbox import FileOutbox

from edge.upload import UploadConfig, Uploader, open_target


def main() -> None:
    outbox_dir, state_dir, uri, bandwidth = sys.argv[1:]
    # One PUT at a time and a bandwidth cap: slow enough that the kill lands mid-batch.
    config = UploadConfig(batch_size=5, parallel=1, bandwidth=int(bandwidth))
    target = open_target(uri, config)
    uploader = Uploader(FileOutbox(Path(outbox_dir)), target, config, state_dir=state_dir)
    print("started", flush=True)
    uploader.upload_once()
    print("finished", flush=True)


if __name__ == "__main__":
    main()
