"""Where a record goes in the store, and the JSON that travels with it.

``prefix/<device>/<model>/<yyyy>/<mm>/<dd>/<sha256>.<ext>`` (the encoded image, content-
addressed, date of capture in UTC), ``….json`` next to it (the sidecar: the record's metadata),
and ``prefix/<device>/manifests/<batch-id>.json`` (a Label Studio import: one task per record,
the model's label as a pre-annotation). The same record always maps to the same bytes under
the same keys, so a retry after a crash overwrites objects with themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from edge.errors import ConfigError
from edge.records import Stored

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_PART = 80
CONTENT_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png"}
# Label Studio's image-classification template: <Image name="image" value="$image"/> and
# <Choices name="choice" toName="image">; a project with that config imports a manifest as is.
LS_FROM_NAME = "choice"
LS_TO_NAME = "image"


def _slug(part: str) -> str:
    """``part`` in the safe alphabet only: ASCII letters, digits, ``.``, ``_``, ``-``; no
    leading dot or underscore, at most ``_MAX_PART`` characters; "" when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode()
    return _UNSAFE.sub("_", ascii_text).lstrip("._")[:_MAX_PART].rstrip("_")


def sanitize(part: str, fallback: str = "unknown") -> str:
    """``part`` as one safe path segment, distinct for distinct ``part``.

    Device ids, model names and labels come from configuration and models, i.e. from outside;
    a ``/``, ``..`` or control character in one must not move an object elsewhere in the store.
    A part already safe (what :func:`_slug` leaves alone) is kept as it is, so the layout of
    existing buckets does not move. Otherwise it becomes a readable slug (``fallback`` when
    nothing safe remains) and ``-`` + 8 hex digits of the SHA-256 of the original: ``站点一``
    and ``站点二``, or ``line/3`` and ``line_3``, stay apart. (Only an id chosen to equal
    another's slug and hash could meet it: the hash is for accidents, not adversaries.)
    """
    slug = _slug(part)
    if slug and slug == part:
        return part
    digest = hashlib.sha256(part.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    readable = slug[: _MAX_PART - len(digest) - 1].rstrip("._-") or fallback
    return f"{readable}-{digest}"


def split_prefix(prefix: str, key: str = "upload.target") -> str:
    """A target's prefix as ``a/b`` (no leading/trailing slash); refuses ``.``/``..`` segments
    and anything sanitize() would change, since the operator wrote it on purpose."""
    segments = [s for s in prefix.split("/") if s]
    for s in segments:
        if s in (".", "..") or _slug(s) != s:
            raise ConfigError(
                f"{key}: prefix segment {s!r} must be letters, digits, '.', '_' or '-' "
                "and not '.' or '..'"
            )
    return "/".join(segments)


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _check(record: Stored) -> tuple[str, str]:
    if not _SHA256.match(record.sha256):
        raise ValueError(f"record {record.id}: sha256 must be 64 lowercase hex digits")
    ext = record.extension.lower()
    if ext not in CONTENT_TYPES:
        raise ValueError(f"record {record.id}: extension must be one of {sorted(CONTENT_TYPES)}")
    return record.sha256, ext


def _directory(prefix: str, record: Stored) -> str:
    day = dt.datetime.fromtimestamp(record.captured_at, tz=dt.timezone.utc)
    return _join(
        prefix,
        sanitize(record.device),
        sanitize(record.model),
        f"{day:%Y}",
        f"{day:%m}",
        f"{day:%d}",
    )


def image_key(prefix: str, record: Stored) -> str:
    sha, ext = _check(record)
    return f"{_directory(prefix, record)}/{sha}.{ext}"


def sidecar_key(prefix: str, record: Stored) -> str:
    sha, _ = _check(record)
    return f"{_directory(prefix, record)}/{sha}.json"


def content_type(record: Stored) -> str:
    return CONTENT_TYPES[_check(record)[1]]


def batch_id(records: Iterable[Stored]) -> str:
    """A name for a batch, the same for the same records whatever their order: the capture time
    of the oldest (so manifests list in time order) and a hash of the records' identities."""
    items = sorted((r.sha256, repr(float(r.captured_at)), r.device) for r in records)
    if not items:
        raise ValueError("a batch needs at least one record")
    digest = hashlib.sha256("\n".join(" ".join(i) for i in items).encode()).hexdigest()
    oldest = min(float(i[1]) for i in items)
    stamp = dt.datetime.fromtimestamp(oldest, tz=dt.timezone.utc)
    return f"{stamp:%Y%m%dT%H%M%SZ}-{digest[:16]}"


def manifest_key(prefix: str, device: str, batch: str) -> str:
    return _join(prefix, sanitize(device), "manifests", f"{batch}.json")


def _json(doc: Any) -> bytes:
    # Sorted keys and fixed separators: the same record always gives the same bytes.
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=_plain).encode()


def _plain(value: Any) -> Any:
    # NumPy scalars and arrays, tuples in metadata: JSON has no other way to say them.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def sidecar(record: Stored, image_uri: str, size: int) -> bytes:
    """The record's metadata, with where its image is and what it must hash to."""
    doc: dict[str, Any] = dict(record.metadata)
    doc.update(
        {
            "image": image_uri,
            "sha256": record.sha256,
            "bytes": size,
            "device": record.device,
            "model": record.model,
            "label": record.label,
            "decision": record.decision,
            "captured_at": record.captured_at,
        }
    )
    return _json(doc)


def label_studio_task(record: Stored, image_uri: str, sidecar_uri: str) -> dict[str, Any]:
    """One Label Studio task: ``data.image`` for the <Image> tag, the model's label as a
    choices pre-annotation scored with its calibrated confidence."""
    meta: Mapping[str, Any] = record.metadata
    confidence = meta.get("confidence")
    version = meta.get("model_version")
    captured = dt.datetime.fromtimestamp(record.captured_at, tz=dt.timezone.utc)
    prediction: dict[str, Any] = {
        "model_version": f"{record.model} {version}" if version else record.model,
        "result": [
            {
                "from_name": LS_FROM_NAME,
                "to_name": LS_TO_NAME,
                "type": "choices",
                "value": {"choices": [record.label]},
            }
        ],
    }
    if isinstance(confidence, (int, float)):
        prediction["score"] = float(confidence)
    return {
        "data": {
            "image": image_uri,
            "sidecar": sidecar_uri,
            "sha256": record.sha256,
            "device": record.device,
            "model": record.model,
            "decision": record.decision,
            "reason": meta.get("reason"),
            "captured_at": captured.isoformat().replace("+00:00", "Z"),
        },
        "predictions": [prediction],
    }


def manifest(records: Sequence[Stored], uri: Callable[[str], str], prefix: str) -> bytes:
    """The batch's Label Studio import: a JSON list of tasks, one per distinct image."""
    seen: set[str] = set()
    tasks = []
    for r in records:
        # Two records of the same image are one object in the store: one task, not two.
        if r.sha256 in seen:
            continue
        seen.add(r.sha256)
        tasks.append(label_studio_task(r, uri(image_key(prefix, r)), uri(sidecar_key(prefix, r))))
    return json.dumps(tasks, indent=1, default=_plain).encode()


__all__ = [
    "CONTENT_TYPES",
    "batch_id",
    "content_type",
    "image_key",
    "label_studio_task",
    "manifest",
    "manifest_key",
    "sanitize",
    "sidecar",
    "sidecar_key",
    "split_prefix",
]
