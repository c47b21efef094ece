"""Finds the tensors of an ONNX model whose data lives outside the model file.

An ONNX tensor can keep its values in another file (``external_data`` with a ``location``),
which ONNX Runtime opens by name when the model is loaded — relative to the model's path or,
for a model given as bytes, to the current directory. Those bytes are not the ones the
manifest hashed, so edge refuses such models; this module finds them by reading the model's
protobuf encoding directly, because ``onnx`` is not a runtime dependency.

Only the messages that can hold a tensor are entered (model → graph → initializer, node
attribute, sub-graph, function, training info); every other field is skipped by its length,
so a model of megabytes costs a few milliseconds. The walk uses an explicit stack with a
depth limit: a file cannot make it recurse.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

# Field numbers from onnx/onnx.proto3 (stable since ONNX 1.0; the newer ones are additions).
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _FUNCTION, _TRAINING, _SPARSE, _TENSOR, _ENTRY = range(9)
_CHILDREN: Mapping[int, Mapping[int, int]] = {
    # ModelProto: graph, training_info, functions
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},
    # GraphProto: node, initializer, sparse_initializer
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    # NodeProto: attribute
    _NODE: {5: _ATTRIBUTE},
    # AttributeProto: t, g, tensors, graphs, sparse_tensor, sparse_tensors
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    # FunctionProto: node
    _FUNCTION: {7: _NODE},
    # TrainingInfoProto: initialization, algorithm
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    # SparseTensorProto: values, indices
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _TENSOR: {},
    _ENTRY: {},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_DATA_LOCATION_EXTERNAL = 1
_ENTRY_KEY, _ENTRY_VALUE = 1, 2

#: Deeper than any real model's sub-graphs (If/Loop bodies nest a handful of levels).
MAX_DEPTH = 64

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class ProtoError(ValueError):
    """The bytes are not a well-formed protobuf encoding (or nest deeper than MAX_DEPTH)."""


def external_tensors(content: bytes) -> list[tuple[str, str]]:
    """``(tensor name, location)`` of every tensor in the ONNX model ``content`` whose data
    is stored outside it (location ``""`` when the tensor does not name one).

    Raises :class:`ProtoError` when ``content`` is not a well-formed protobuf message.
    """
    buf = memoryview(content)
    found: list[tuple[str, str]] = []
    stack = [(_MODEL, 0, len(buf), 0)]
    while stack:
        kind, start, end, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ProtoError(f"messages nested more than {MAX_DEPTH} deep")
        if kind == _TENSOR:
            external = _external_location(buf, start, end)
            if external is not None:
                found.append(external)
            continue
        children = _CHILDREN[kind]
        for number, wire, value in _fields(buf, start, end):
            child = children.get(number)
            if child is not None and wire == _LEN:
                stack.append((child, value[0], value[1], depth + 1))
    return found


def _external_location(buf: memoryview, start: int, end: int) -> tuple[str, str] | None:
    """``(name, location)`` if the TensorProto at ``buf[start:end]`` is external, else None."""
    name, location, external = "", "", False
    for number, wire, value in _fields(buf, start, end):
        if number == _TENSOR_NAME and wire == _LEN:
            name = _text(buf, value)
        elif number == _TENSOR_DATA_LOCATION and wire == _VARINT:
            external = external or value[0] == _DATA_LOCATION_EXTERNAL
        elif number == _TENSOR_EXTERNAL_DATA and wire == _LEN:
            external = True
            key, text = "", ""
            for entry_number, entry_wire, entry_value in _fields(buf, *value):
                if entry_wire != _LEN:
                    continue
                if entry_number == _ENTRY_KEY:
                    key = _text(buf, entry_value)
                elif entry_number == _ENTRY_VALUE:
                    text = _text(buf, entry_value)
            if key == "location":
                location = text
    return (name, location) if external else None


def _text(buf: memoryview, span: tuple[int, int]) -> str:
    return bytes(buf[span[0] : span[1]]).decode("utf-8", errors="replace")


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, tuple[int, int]]]:
    """``(field number, wire type, value)`` of each field of the message at
    ``buf[start:end]``; value is ``(varint, 0)`` for a varint, else the ``(start, end)`` span
    of its bytes."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError(f"field number 0 at byte {pos}")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, (value, 0)
            continue
        if wire == _LEN:
            length, pos = _varint(buf, pos, end)
            span = (pos, pos + length)
        elif wire == _I64:
            span = (pos, pos + 8)
        elif wire == _I32:
            span = (pos, pos + 4)
        else:  # groups (3, 4) are a deprecated encoding no ONNX writer uses; 6, 7 do not exist
            raise ProtoError(f"wire type {wire} at byte {pos}")
        if span[1] > end:
            raise ProtoError(f"field {number} runs past the end of its message")
        pos = span[1]
        yield number, wire, span


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise ProtoError("a varint runs past the end of its message")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise ProtoError(f"a varint longer than 10 bytes at byte {pos}")


__all__ = ["MAX_DEPTH", "ProtoError", "external_tensors"]
