"""Uploads over HTTPS, streamed straight into a home folder with their SHA-256.

Django hands each chunk of a multipart body to the upload handlers as it arrives. This one
writes it to a file beside the home folders (never memory, never the system's temporary
folder), hashing as it goes, and moves the finished file into place in one step, so a
half-uploaded file never shows in the folder and a failed upload leaves the old file alone.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.utils import timezone

from users.models import Interface

from . import flows
from .homes import HashedFile, PathRefused, check_new_name, display
from .models import Direction, Result


@dataclass
class Uploaded:
    """What became of one file of an upload: its name and size, the digest, or why it failed."""

    name: str
    size: int = 0
    sha256: str = ""
    error: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "size": self.size, "sha256": self.sha256 or None, "error": self.error or None}


class HomeUploadHandler(FileUploadHandler):
    """Writes the request's files into ``folder`` (names) of ``owner``'s home folder."""

    chunk_size = 1024 * 1024

    def __init__(self, request, owner, folder: tuple[str, ...], actor, source_address):
        super().__init__(request)
        self.owner, self.folder, self.actor, self.source_address = owner, folder, actor, source_address
        self.home = flows.home(owner)
        self.results: list[Uploaded] = []
        self._file: HashedFile | None = None
        self._staged: str | None = None
        self._current: Uploaded | None = None
        self._started = None

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self._current = Uploaded(file_name or "")
        try:
            check_new_name(self._current.name)
            if self.home.kind(self.parts) == "folder":
                raise PathRefused(f"There is a folder named '{self._current.name}' here already.")
            self.home.path(self.parts)  # nothing on the way may be a link
        except PathRefused as exc:
            self._refuse(str(exc))
            raise SkipFile from None
        fd, self._staged = tempfile.mkstemp(prefix="upload-", dir=self.home.staging(self.home.root.parent))
        self._file = HashedFile(os.fdopen(fd, "wb", buffering=0), display(self.parts), writing=True)
        self._started = timezone.now()

    @property
    def parts(self) -> tuple[str, ...]:
        return (*self.folder, self._current.name)

    def receive_data_chunk(self, raw_data, start):
        if self._file is None:
            return None
        try:
            self._file.write(raw_data)
        except OSError as exc:
            self._fail(Result.FAILED, f"the file could not be written ({exc.strerror or exc})")
            raise SkipFile from None
        return None

    def file_complete(self, file_size):
        if self._file is None:
            return None
        self._file.close()
        try:
            os.replace(self._staged, self.home.path(self.parts))
        except (OSError, PathRefused) as exc:
            self._fail(Result.FAILED, f"the file could not be put in place ({getattr(exc, 'strerror', None) or exc})")
            return None
        self._staged = None
        done = self._current
        done.size, done.sha256 = self._file.transferred, self._file.sha256()
        self._record(Result.COMPLETE)
        self.results.append(done)
        self._file = None
        return None

    def upload_interrupted(self):
        self.abandon()

    def upload_complete(self):
        self.abandon()

    def abandon(self) -> None:
        """A file still open when the request ends was cut short: remove it and record it so."""
        if self._file is not None:
            self._fail(Result.ABORTED, "the upload was interrupted")

    # --- the end of one file --------------------------------------------------------------------

    def _refuse(self, reason: str) -> None:
        self._current.error = reason
        self.results.append(self._current)

    def _fail(self, result: str, reason: str) -> None:
        file, self._file = self._file, None
        file.close()
        if self._staged:
            try:
                os.unlink(self._staged)
            except OSError:
                pass
            self._staged = None
        self._current.size = file.transferred
        self._record(result, file, reason)
        self._refuse(reason[0].upper() + reason[1:] + ".")

    def _record(self, result: str, file: HashedFile | None = None, reason: str = "") -> None:
        file = file or self._file
        flows.record_transfer(
            self.owner,
            interface=Interface.HTTPS,
            direction=Direction.UPLOAD,
            parts=self.parts,
            size=file.transferred,
            sha256=file.sha256(),
            result=result,
            started_at=self._started,
            source_address=self.source_address,
            reason=reason,
            actor=self.actor,
        )
