"""The buffer's records for people and labelling tools: JSON lines, or Label Studio tasks."""

from __future__ import annotations

import json
from typing import Any, Literal, TextIO

from edge.buffer.store import Row, Store

ExportFormat = Literal["jsonl", "labelstudio"]
FORMATS: tuple[ExportFormat, ...] = ("jsonl", "labelstudio")


def jsonl_record(store: Store, row: Row) -> dict[str, Any]:
    """The sidecar, with the record's id and the image's absolute path."""
    doc = row.sidecar()
    doc["id"] = row.id
    doc["path"] = str(store.image_path(row.sha256, row.extension).resolve())
    return doc


def labelstudio_task(store: Store, row: Row) -> dict[str, Any]:
    """A Label Studio task with the model's answer as a pre-annotation.

    The image is a local-files URL relative to the data directory: start Label Studio with
    ``LOCAL_FILES_SERVING_ENABLED=true LOCAL_FILES_DOCUMENT_ROOT=<data-dir>`` and add that
    directory as local storage. The labelling config names its image ``image`` and its
    choices ``label``.
    """
    meta = row.sidecar()
    relative = store.image_path(row.sha256, row.extension).relative_to(store.root.parent)
    return {
        "data": {
            "image": f"/data/local-files/?d={relative.as_posix()}",
            "record": row.id,
            "device": row.device,
            "captured_at": row.captured_at,
            "decision": row.decision,
            "reason": row.reason,
        },
        "predictions": [
            {
                "model_version": f"{meta.get('model', row.model)}@{meta.get('model_version', '')}",
                "score": meta.get("confidence"),
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": [row.label]},
                    }
                ],
            }
        ],
        "meta": meta,
    }


def export(store: Store, fmt: ExportFormat, out: TextIO) -> int:
    """Write every record of `store` to `out`, oldest first; returns how many."""
    n = 0
    if fmt == "jsonl":
        for row in store.rows():
            out.write(json.dumps(jsonl_record(store, row), separators=(",", ":")) + "\n")
            n += 1
        return n
    # Label Studio imports a JSON list of tasks; written item by item to keep memory flat.
    out.write("[")
    for row in store.rows():
        out.write(",\n" if n else "\n")
        out.write(json.dumps(labelstudio_task(store, row)))
        n += 1
    out.write("\n]\n")
    return n
