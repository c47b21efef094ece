"""A model directory's ``manifest.json``: parsed once into frozen dataclasses, then checked.

Parsing reports the first problem as one :class:`~edge.errors.ModelError` naming the key path
(``input.size``, ``files["m.onnx"].layout``). Keys this version does not know are ignored, so
``edge calibrate`` (or a newer builder) can add sections; the whole document stays available
as :attr:`Manifest.data`. :meth:`Manifest.verify` then checks every listed file against its
sha256 and refuses model files the manifest does not list. Every file is read inside the
directory (a symlink to a file outside it is refused) and :meth:`Manifest.read` hands out
the very bytes it hashed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Literal, NoReturn, cast, get_args

from edge._native import _core
from edge.errors import ModelError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"

Color = Literal["rgb", "bgr", "gray"]
ResizeMethod = Literal["area", "bilinear"]
Fit = Literal["stretch", "letterbox", "crop"]
Layout = Literal["nhwc", "nchw"]

#: The runtimes a model file can be listed for, and the file suffix each one reads.
RUNTIME_SUFFIXES: Mapping[str, str] = MappingProxyType({"onnx": ".onnx", "tflite": ".tflite"})
#: Files with these suffixes in a model directory must be listed in the manifest.
MODEL_SUFFIXES = frozenset(RUNTIME_SUFFIXES.values())
#: The outputs every classification model file must name.
OUTPUT_KEYS = ("logits", "embedding")

_HASH_CHUNK = 1 << 20
#: The largest input side the C++ preprocessor makes (``kMaxOutputSide`` in cpp/core/size_limits.h).
MAX_INPUT_SIDE: int = _core.MAX_SIDE
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIX = "fix the manifest or rebuild the model directory with its build script"


@dataclass(frozen=True)
class InputSpec:
    """What the model expects as input, before layout and dtype (those are per file).

    ``size`` is ``(width, height)``; ``color`` the channel order (the preprocessor's ``dst``);
    ``mean``/``std`` are per channel, in pixel units: value = (pixel − mean) / std.
    """

    size: tuple[int, int]
    color: Color
    resize: ResizeMethod
    fit: Fit
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3


@dataclass(frozen=True)
class ModelFile:
    """One file listed in the manifest.

    A *model* file (``is_model``) has a runtime edge knows, no ``role``, and says its
    ``precision``, ``layout``, input tensor name and the names of the ``logits`` and
    ``embedding`` outputs. Other files (``runtime`` null, or a ``role`` such as data written by
    ``edge calibrate``) are only checked against their sha256.
    """

    name: str
    sha256: str
    runtime: str | None = None
    precision: str | None = None
    layout: Layout | None = None
    input: str | None = None
    outputs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    role: str | None = None

    @property
    def is_model(self) -> bool:
        return self.runtime in RUNTIME_SUFFIXES and self.role is None


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated ``manifest.json``; :meth:`load` it, then :meth:`verify` the files."""

    directory: Path
    format_version: int
    name: str
    version: str
    task: str
    labels: tuple[str, ...]
    input: InputSpec
    files: tuple[ModelFile, ...]
    provenance: Mapping[str, Any] = field(hash=False)
    #: The whole document, including sections this version of edge does not interpret.
    data: Mapping[str, Any] = field(hash=False, repr=False)
    #: ``directory`` with every symlink resolved, once, at load: all files are read from here,
    #: so a directory symlink switched to another release mid-load cannot mix two releases.
    root: Path = field(compare=False, repr=False)

    @property
    def path(self) -> Path:
        return self.directory / MANIFEST_NAME

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Reads and validates ``path`` (a model directory, or its ``manifest.json``)."""
        path = Path(path)
        directory = path.parent if path.name == MANIFEST_NAME and path.is_file() else path
        manifest_path = directory / MANIFEST_NAME
        if not directory.is_dir():
            raise ModelError(
                f"{directory}: no such model directory; pass the directory that holds "
                f"{MANIFEST_NAME} and the model files"
            )
        root = directory.resolve()
        if not os.path.lexists(root / MANIFEST_NAME):
            raise ModelError(
                f"{directory}: missing {MANIFEST_NAME}, so this is not a model directory; "
                "a model directory holds manifest.json and the model files it lists "
                "(build one with models/<name>/build.py)"
            )
        with _open_inside(root, MANIFEST_NAME, manifest_path) as fh:
            try:
                content = fh.read()
            except OSError as exc:
                raise ModelError(f"{manifest_path}: cannot read it ({exc}); {_FIX}") from exc
        doc = parse_json(content, manifest_path, fix=_FIX)
        return _Parser(manifest_path).manifest(doc, directory, root)

    def file(self, name: str) -> ModelFile:
        """The listed file called ``name``; KeyError if the manifest does not list it."""
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"{self.path}: no file {name!r} in files")

    def listed(self, name: str) -> ModelFile | None:
        """The listed file called ``name``, or None if the manifest does not list it."""
        return next((f for f in self.files if f.name == name), None)

    def holds(self, name: str) -> bool:
        """Whether the directory has an entry called ``name`` (listed or not; even a broken
        symlink)."""
        return os.path.lexists(self.root / name)

    def model_files(
        self, runtime: str | None = None, precision: str | None = None
    ) -> tuple[ModelFile, ...]:
        """The model files, optionally only those for ``runtime`` and/or of ``precision``."""
        return tuple(
            f
            for f in self.files
            if f.is_model
            and (runtime is None or f.runtime == runtime)
            and (precision is None or f.precision == precision)
        )

    def verify(self) -> None:
        """Checks that every listed file is there with its sha256, and no stray model file.

        Raises :class:`~edge.errors.ModelError` naming the first file that is missing,
        corrupted or replaced, a ``*.onnx``/``*.tflite`` file the manifest does not list, or
        an entry that is a symlink to something outside the directory.
        """
        for f in self.files:
            with self._open(f) as fh:
                self._check_digest(f, _sha256_stream(fh, self.directory / f.name))
        self._check_no_stray_files()

    def read(self, file: ModelFile) -> bytes:
        """The bytes of ``file``, checked against its sha256.

        Loading a runtime (or parsing data) from these bytes, not from the path, means what
        is used is what was hashed, even if the file is replaced in between.
        """
        path = self.directory / file.name
        with self._open(file) as fh:
            try:
                content = fh.read()
            except OSError as exc:
                raise ModelError(f"{path}: cannot read it ({exc})") from exc
        self._check_digest(file, hashlib.sha256(content).hexdigest())
        return content

    def _open(self, f: ModelFile) -> IO[bytes]:
        return _open_inside(self.root, f.name, self.directory / f.name, listed=True)

    def _check_digest(self, f: ModelFile, digest: str) -> None:
        if digest != f.sha256:
            raise ModelError(
                f"{self.directory / f.name}: sha256 mismatch: {MANIFEST_NAME} says "
                f"{f.sha256[:16]}…, the file hashes to {digest[:16]}…. The file is corrupted "
                "or was replaced; restore the model directory as it was released (or rebuild "
                "it) — never edit the hash to match"
            )

    def _check_no_stray_files(self) -> None:
        listed = {f.name for f in self.files}
        for path in sorted(self.root.iterdir()):
            shown = self.directory / path.name
            if path.is_symlink():
                _check_inside(self.root, path, shown)
            if path.suffix.lower() in MODEL_SUFFIXES and path.name not in listed:
                raise ModelError(
                    f"{shown}: wrong file in the directory: a model file that {MANIFEST_NAME} "
                    "does not list; remove it (or list it in files with its sha256)"
                )


def parse_json(content: bytes, path: Path, *, fix: str) -> Any:
    """The JSON document in ``content`` (the bytes of ``path``), or a one-line ModelError
    that ends with ``fix``. A document nested too deeply for the parser is refused, not a
    RecursionError."""
    try:
        return json.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); {fix}"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); {fix}"
        ) from exc
    except RecursionError:
        # Raised from inside the C parser: the stack unwound cleanly; nothing to chain.
        raise ModelError(
            f"{path}: JSON nested too deeply to be a model directory's file; {fix}"
        ) from None


def _check_inside(root: Path, path: Path, shown: Path) -> Path:
    """``path`` with its symlinks resolved; a ModelError if that leaves ``root``."""
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root):
        raise ModelError(
            f"{shown}: a symlink to {real}, outside the model directory; a model directory "
            "must hold its own files: copy the file in (or remove the link)"
        )
    return real


def _open_inside(root: Path, name: str, shown: Path, *, listed: bool = False) -> IO[bytes]:
    """``root/name`` opened for reading, once its symlinks (if any) are resolved inside
    ``root``; ``shown`` is the path messages name."""
    real = _check_inside(root, root / name, shown)
    # O_NOFOLLOW: the path was resolved above, so a symlink now is one planted since.
    # O_NONBLOCK: a FIFO planted under a listed name must not hang the load (no effect on
    # regular files).
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        fd = -1
    except OSError as exc:
        raise ModelError(f"{shown}: cannot read it ({exc})") from exc
    if fd >= 0 and stat.S_ISREG(os.fstat(fd).st_mode):
        return os.fdopen(fd, "rb")
    if fd >= 0:
        os.close(fd)
    if listed:
        raise ModelError(
            f"{shown}: listed in {MANIFEST_NAME} but missing; restore the model directory "
            "as it was released (or rebuild it with its build script)"
        )
    raise ModelError(f"{shown}: not a regular file; {_FIX}")


def _sha256_stream(fh: IO[bytes], shown: Path) -> str:
    h = hashlib.sha256()
    try:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    except OSError as exc:
        raise ModelError(f"{shown}: cannot read it ({exc})") from exc
    return h.hexdigest()


class _Parser:
    """Turns the JSON document into a Manifest; every error names the key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ModelError(f"{self.path}: {key} {problem}; {_FIX}")

    def get(self, obj: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in obj:
            self.fail(_join(where, key), "is missing (required key)")
        return obj[key]

    def obj(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(where or "the document", f"must be a JSON object, got {_kind(value)}")
        return cast(Mapping[str, Any], value)

    def text(self, obj: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Any:
        if optional and obj.get(key) is None:
            return None
        value = self.get(obj, key, where)
        if not isinstance(value, str) or not value:
            self.fail(_join(where, key), f"must be a non-empty string, got {_kind(value)}")
        return value

    def choice(self, obj: Mapping[str, Any], key: str, where: str, options: tuple[str, ...]) -> Any:
        value = self.get(obj, key, where)
        if value not in options:
            self.fail(_join(where, key), f"must be one of {', '.join(options)}; got {value!r}")
        return value

    def manifest(self, doc: Any, directory: Path, root: Path) -> Manifest:
        top = self.obj(doc, "")
        version = self.get(top, "format_version", "")
        if not _is_int(version):
            self.fail("format_version", f"must be an integer, got {_kind(version)}")
        if version > FORMAT_VERSION:
            raise ModelError(
                f"{self.path}: format_version {version} is newer than this edge reads "
                f"(up to {FORMAT_VERSION}); upgrade edge to load this model directory"
            )
        if version < 1:
            self.fail("format_version", f"must be {FORMAT_VERSION}, got {version}")
        labels = self.get(top, "labels", "")
        if (
            not isinstance(labels, list)
            or not labels
            or not all(isinstance(x, str) and x for x in labels)
        ):
            self.fail("labels", "must be a non-empty list of non-empty strings")
        files_obj = self.obj(self.get(top, "files", ""), "files")
        if not files_obj:
            self.fail("files", "must list at least one file")
        files = tuple(self.file(name, entry) for name, entry in files_obj.items())
        self.no_duplicate_models(files)
        return Manifest(
            directory=directory,
            format_version=version,
            name=self.text(top, "name", ""),
            version=self.text(top, "version", ""),
            task=self.text(top, "task", ""),
            labels=tuple(labels),
            input=self.input_spec(self.obj(self.get(top, "input", ""), "input")),
            files=files,
            provenance=MappingProxyType(
                dict(self.obj(self.get(top, "provenance", ""), "provenance"))
            ),
            data=MappingProxyType(dict(top)),
            root=root,
        )

    def input_spec(self, obj: Mapping[str, Any]) -> InputSpec:
        size = self.get(obj, "size", "input")
        if not (
            isinstance(size, list)
            and len(size) == 2
            and all(_is_int(v) and 0 < v <= MAX_INPUT_SIDE for v in size)
        ):
            self.fail(
                "input.size",
                f"must be [width, height], integers from 1 to {MAX_INPUT_SIDE} (the largest "
                f"input the preprocessor makes), got {_short(size)}",
            )
        color = self.choice(obj, "color", "input", get_args(Color))
        channels = 1 if color == "gray" else 3
        mean = self.per_channel(obj, "mean", channels, positive=False)
        std = self.per_channel(obj, "std", channels, positive=True)
        return InputSpec(
            size=(size[0], size[1]),
            color=color,
            resize=self.choice(obj, "resize", "input", get_args(ResizeMethod)),
            fit=self.choice(obj, "fit", "input", get_args(Fit)),
            mean=mean,
            std=std,
        )

    def per_channel(
        self, obj: Mapping[str, Any], key: str, channels: int, *, positive: bool
    ) -> tuple[float, ...]:
        value = self.get(obj, key, "input")
        want = f"a list of 1 or {channels} numbers (one per channel, pixel units)"
        if not isinstance(value, list) or len(value) not in (1, channels):
            self.fail(f"input.{key}", f"must be {want}, got {_short(value)}")
        for v in value:
            if (
                not isinstance(v, int | float)
                or isinstance(v, bool)
                or not math.isfinite(v)
                or (positive and v <= 0)
            ):
                extra = " positive" if positive else ""
                self.fail(f"input.{key}", f"must hold finite{extra} numbers, got {_short(value)}")
        return tuple(float(v) for v in value) * (channels // len(value))

    def file(self, name: str, entry: Any) -> ModelFile:
        where = f"files[{json.dumps(name)}]"
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            self.fail(where, "must name a file inside the model directory (no path)")
        obj = self.obj(entry, where)
        digest = self.get(obj, "sha256", where)
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest.lower()):
            self.fail(f"{where}.sha256", f"must be 64 hex digits, got {digest!r}")
        runtime = obj.get("runtime")
        if runtime is not None and (not isinstance(runtime, str) or not runtime):
            self.fail(f"{where}.runtime", f"must be a runtime name or null, got {runtime!r}")
        role = self.text(obj, "role", where, optional=True)
        suffix = RUNTIME_SUFFIXES.get(runtime) if runtime is not None else None
        if suffix is not None and not name.lower().endswith(suffix):
            self.fail(
                f"{where}.runtime",
                f"is {runtime!r} but the file is not a {suffix} file: wrong file for the runtime",
            )
        if suffix is None or role is not None:
            return ModelFile(name=name, sha256=digest.lower(), runtime=runtime, role=role)
        outputs = self.obj(self.get(obj, "outputs", where), f"{where}.outputs")
        return ModelFile(
            name=name,
            sha256=digest.lower(),
            runtime=runtime,
            precision=self.text(obj, "precision", where),
            layout=self.choice(obj, "layout", where, get_args(Layout)),
            input=self.text(obj, "input", where),
            outputs=MappingProxyType(
                {k: self.text(outputs, k, f"{where}.outputs") for k in OUTPUT_KEYS}
            ),
        )

    def no_duplicate_models(self, files: tuple[ModelFile, ...]) -> None:
        seen: dict[tuple[str | None, str | None], str] = {}
        for f in files:
            if not f.is_model:
                continue
            key = (f.runtime, f.precision)
            if key in seen:
                self.fail(
                    "files",
                    f"lists two {f.runtime} {f.precision} model files ({seen[key]!r} and "
                    f"{f.name!r}); keep one, or give the other a role",
                )
            seen[key] = f.name


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "InputSpec",
    "Manifest",
    "ModelFile",
    "parse_json",
]
