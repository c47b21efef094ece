"""``file:///dir``: a local outbox with the store's layout (the default of ``edge run``).

Each object is written the way the buffer writes its own files: temporary file, fsync, rename,
fsync of the directory; so a power cut leaves either the whole object or none of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edge.errors import ConfigError
from edge.upload.config import UploadConfig
from edge.upload.target import StoreError, redact_uri


class DirectoryTarget:
    def __init__(self, root: str | Path) -> None:
        self.prefix = ""
        self.root = Path(root).resolve()

    @classmethod
    def from_uri(cls, uri: str, config: UploadConfig | None = None) -> DirectoryTarget:
        # ``config`` is taken for the registry's sake: a directory has no credentials,
        # timeouts or endpoint to set.
        parts = urlsplit(uri)
        if (
            parts.netloc not in ("", "localhost")
            or not parts.path.startswith("/")
            or "?" in uri
            or "#" in uri
        ):
            raise ConfigError(
                f"upload.target: expected file:///absolute/directory; got {redact_uri(uri)!r}"
            )
        return cls(unquote(parts.path))

    @property
    def uri(self) -> str:
        return self.root.as_uri()

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()

    def __repr__(self) -> str:
        return f"DirectoryTarget({self.uri!r})"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        # Keys are built from sanitised parts; this is the last line if one slipped through.
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"object key {key!r} leaves the outbox {self.root}")
        return path

    def url(self, key: str) -> str:
        return self._path(key).as_uri()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            size = path.stat().st_size
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            # A full or read-only disk does not go away by itself within a backoff period,
            # but it is also no reason to stop trying: count it as offline.
            raise StoreError(f"{self.uri}: {key}: {exc.strerror or exc}", offline=True) from None
        if size != len(data):
            raise StoreError(f"{self.uri}: {key}: wrote {size} of {len(data)} bytes", offline=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def close(self) -> None:
        pass
