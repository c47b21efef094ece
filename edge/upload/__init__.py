"""Fleet upload: ship the buffer's flagged frames to an object store, confirmed, resumable.

>>> from edge.upload import UploadConfig, Uploader, open_target   # doctest: +SKIP
>>> uploader = Uploader(buffer, open_target("s3://fleet/frames"), UploadConfig(interval=300),
...                     state_dir="edge-data/upload")
>>> uploader.start(); ...; uploader.counters(); uploader.stop()
"""

from __future__ import annotations

from edge.upload.config import UploadConfig, Window, default_target
from edge.upload.registry import open_target
from edge.upload.target import StoreError, Target
from edge.upload.uploader import State, Uploader, UploadReport

__all__ = [
    "State",
    "StoreError",
    "Target",
    "UploadConfig",
    "UploadReport",
    "Uploader",
    "Window",
    "default_target",
    "open_target",
]
