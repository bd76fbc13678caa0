"""The upload form (legacy upload API, multipart/form-data), parsed as it streams in.

The file part goes to a temporary file next to the index while its sha256 is taken; the
other fields are kept in memory, bounded. Nothing of the body is ever held whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from wheelhouse.errors import UploadRefusedError

__all__ = ["FormLimits", "UploadForm", "read_form"]

FILE_FIELD = "content"


@dataclass(frozen=True)
class FormLimits:
    """How big an upload may be."""

    max_file: int = 1024 * 1024 * 1024  # bytes of the uploaded file
    max_fields: int = 4 * 1024 * 1024  # bytes of all other fields together (the readme too)
    max_parts: int = 1000


@dataclass
class UploadForm:
    """The fields of one upload, and where its file waits until it is checked."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None  # as the client named the file part, unchecked
    path: Path | None = None  # the temporary file, removed by the caller
    sha256: str = ""
    size: int = 0

    def one(self, name: str) -> str | None:
        """The field's value (the first, if the client sent several), or None."""
        values = self.fields.get(name)
        return values[0] if values else None


def _refuse(status: int, line: str) -> UploadRefusedError:
    return UploadRefusedError(status, line)


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a request's ``Content-Type``; 400 when it is not a form."""
    if not content_type:
        raise _refuse(400, "the upload must be multipart/form-data")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise _refuse(400, "the upload must be multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise _refuse(400, "the multipart form has no usable boundary")
    return boundary


class _Parts:
    """The parser's callbacks: what a part is, and where its bytes go."""

    def __init__(self, form: UploadForm, directory: Path, limits: FormLimits) -> None:
        self.form = form
        self.directory = directory
        self.limits = limits
        self.parts = 0
        self.field_bytes = 0
        self.ended = False
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._value = bytearray()
        self._file: IO[bytes] | None = None
        self._hash = hashlib.sha256()

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise _refuse(413, f"the form has more than {self.limits.max_parts} parts")
        self._headers = {}
        self._name = None
        self._value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition"))
        name = params.get(b"name")
        if disposition != b"form-data" or name is None:
            raise _refuse(400, "a part of the form has no form-data name")
        self._name = name.decode("utf-8", "replace")
        if self._name == FILE_FIELD:
            if self._file is not None:
                raise _refuse(400, "the form has more than one file")
            raw = params.get(b"filename")
            if raw is None:
                raise _refuse(400, "the form's content part has no file name")
            self.form.filename = raw.decode("utf-8", "replace")
            fd, temp = _temp_file(self.directory)
            self.form.path = temp
            self._file = os.fdopen(fd, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._name == FILE_FIELD and self._file is not None:
            self.form.size += len(chunk)
            if self.form.size > self.limits.max_file:
                raise _refuse(413, f"the file is larger than {self.limits.max_file} bytes")
            self._hash.update(chunk)
            self._file.write(chunk)
            return
        self.field_bytes += len(chunk)
        if self.field_bytes > self.limits.max_fields:
            raise _refuse(413, f"the form's fields are larger than {self.limits.max_fields} bytes")
        self._value += chunk

    def on_part_end(self) -> None:
        if self._name == FILE_FIELD and self._file is not None:
            self._file.close()
            self.form.sha256 = self._hash.hexdigest()
        elif self._name is not None:
            value = bytes(self._value).decode("utf-8", "replace")
            self.form.fields.setdefault(self._name, []).append(value)
        self._name = None

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


def _temp_file(directory: Path) -> tuple[int, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        path = directory / f".upload-{os.urandom(8).hex()}.part"
        with contextlib.suppress(FileExistsError):
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
    raise FileExistsError(directory)  # pragma: no cover: 100 collisions of 64 random bits


async def read_form(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    directory: Path,
    limits: FormLimits,
) -> UploadForm:
    """Parse the form that ``chunks`` carry; its file lands in ``directory`` (a temp name).

    Raises ``UploadRefusedError`` (400 malformed or truncated, 413 too large); the temporary
    file is removed then. On success the caller owns ``form.path`` and removes it.
    """
    boundary = boundary_of(content_type)
    form = UploadForm()
    parts = _Parts(form, directory, limits)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": parts.on_part_begin,
            "on_part_data": parts.on_part_data,
            "on_part_end": parts.on_part_end,
            "on_header_field": parts.on_header_field,
            "on_header_value": parts.on_header_value,
            "on_header_end": parts.on_header_end,
            "on_headers_finished": parts.on_headers_finished,
            "on_end": parts.on_end,
        },
    )
    try:
        async for chunk in chunks:
            if parts.ended:
                break  # the epilogue after the closing boundary is ignored
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise _refuse(400, "the multipart form is malformed") from exc
        if not parts.ended:
            raise _refuse(400, "the upload was cut short: the form has no closing boundary")
        if form.path is None:
            raise _refuse(400, f"the form has no file (a {FILE_FIELD!r} part)")
    except BaseException:
        parts.close()
        if form.path is not None:
            form.path.unlink(missing_ok=True)
        raise
    finally:
        parts.close()
    return form
