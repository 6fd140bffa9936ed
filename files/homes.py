"""Home folders: paths inside them, and files read or written with their SHA-256. Pure: no Django.

A path a client names is a list of names separated by '/', relative to the user's home
folder; over FTPS, '/' is the home folder itself, as every FTP server shows it. A path is
refused, with a sentence, when it holds NUL or other control characters, a name longer than
255 bytes, a '..' that would leave the home folder, or (over HTTPS) is absolute; a new name
must also be one every common system can store (pathvalidate's portable rules). Nothing is
ever reached through a link: a path with a link anywhere on it is refused, and files are
opened without following one, so a link placed in a home folder cannot lead out of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pathvalidate import ErrorReason, validate_filename
from pathvalidate import ValidationError as NameError_

MAX_NAME_BYTES = 255
MAX_PATH_CHARS = 1024
READ_CHUNK = 1024 * 1024
STALE_UPLOAD_SECONDS = 24 * 3600


class PathRefused(ValueError):
    """A path that may not be used; the message says why, for a person."""


def folder_name(username: str) -> str:
    """The name of a user's home folder: the username, which is unique and holds no '/'.

    A username of dots alone (possible from the command line) would name '.' or '..', so its
    dots are written as %2E; '%' is not allowed in usernames, so this names nobody else.
    """
    if not username or set(username) <= {"."}:
        return username.replace(".", "%2E") or "%00"
    return username


def _check_name(name: str) -> None:
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise PathRefused("A name may not contain NUL, line breaks or other control characters.")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise PathRefused(f"The name '{name[:40]}…' is too long: at most {MAX_NAME_BYTES} bytes.")


def names(path: str, *, cwd: tuple[str, ...] = (), ftp: bool = False) -> tuple[str, ...]:
    """The names from the home folder down to ``path``.

    Over FTPS (``ftp``) a path starting with '/' starts at the home folder and others at
    ``cwd``; '..' steps up, but never above the home folder. Over HTTPS paths are always
    relative to the home folder, and neither an absolute path nor '..' is accepted.
    """
    if not isinstance(path, str):
        raise PathRefused("The path is not text.")
    if len(path) > MAX_PATH_CHARS:
        raise PathRefused(f"The path is too long: at most {MAX_PATH_CHARS} characters.")
    if "\x00" in path:
        raise PathRefused("A path may not contain NUL.")
    if not ftp and (path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":")):
        raise PathRefused("Give a path inside your home folder, not an absolute one.")
    parts: list[str] = [] if path.startswith("/") else list(cwd)
    for name in path.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if not ftp:
                raise PathRefused("'..' is not allowed in a path.")
            if not parts:
                raise PathRefused("The path leads out of your home folder.")
            parts.pop()
            continue
        _check_name(name)
        parts.append(name)
    return tuple(parts)


def check_new_name(name: str) -> None:
    """A name for a new file or folder: one that Windows, macOS and Linux can all store."""
    _check_name(name)
    if name in (".", ".."):
        raise PathRefused(f"'{name}' cannot be the name of a file or folder.")
    try:
        validate_filename(name, platform="universal", max_len=MAX_NAME_BYTES)
    except NameError_ as exc:
        raise PathRefused(f"The name '{name}' cannot be used: {_reason(exc)}") from None


def _reason(exc: NameError_) -> str:
    if exc.reason == ErrorReason.RESERVED_NAME:
        return "it is a name Windows reserves for a device."
    if exc.reason == ErrorReason.INVALID_LENGTH:
        return f"it is longer than {MAX_NAME_BYTES} bytes."
    if exc.description:  # a leading space, a trailing space or dot
        return "a name may not start with a space, nor end with a space or a dot."
    return 'it holds a character some systems cannot store (one of \\ / : * ? " < > |).'


def display(parts: tuple[str, ...]) -> str:
    """A path as people read it: '/' for the home folder itself."""
    return "/" + "/".join(parts)


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool
    size: int
    modified: float

    @property
    def modified_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.modified, dt.UTC)


class Home:
    """One user's home folder. Every path is a tuple of names (from ``names``)."""

    def __init__(self, root: Path):
        self.root = Path(os.path.realpath(root))

    @classmethod
    def create(cls, base: Path, username: str) -> Home:
        """The user's home folder under ``base``, made (private to the service) on first use."""
        base = Path(base)
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = base / folder_name(username)
        if folder.is_symlink():
            raise PathRefused("The home folder is a link; the service does not follow links.")
        folder.mkdir(mode=0o700, exist_ok=True)
        return cls(folder)

    def path(self, parts: tuple[str, ...]) -> Path:
        """The real path, after checking that nothing on the way is a link."""
        current = self.root
        for name in parts:
            current = current / name
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                break
            except NotADirectoryError:
                raise PathRefused("A file cannot hold other files.") from None
            if stat.S_ISLNK(mode):
                raise PathRefused("The path goes through a link; links are not followed.")
        return self.root.joinpath(*parts)

    def parts_of(self, real: str | Path) -> tuple[str, ...] | None:
        """The names of a real path inside the home folder, or None when it is outside."""
        try:
            relative = Path(os.path.normpath(real)).relative_to(self.root)
        except ValueError:
            return None
        return tuple(part for part in relative.parts if part not in ("", "."))

    def entries(self, parts: tuple[str, ...] = ()) -> list[Entry]:
        """A folder's files and folders, folders first; links and special files are left out."""
        found = []
        with os.scandir(self.path(parts)) as listing:
            for item in listing:
                try:
                    info = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
                    is_dir = stat.S_ISDIR(info.st_mode)
                    found.append(Entry(item.name, is_dir, 0 if is_dir else info.st_size, info.st_mtime))
        return sorted(found, key=lambda e: (not e.is_dir, e.name.casefold(), e.name))

    def kind(self, parts: tuple[str, ...]) -> str | None:
        """'file', 'folder', 'other' (links, devices...) or None when nothing is there."""
        try:
            mode = os.lstat(self.path(parts)).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"

    # --- files, read and written with their SHA-256 ---------------------------------------------

    def open_read(self, parts: tuple[str, ...], offset: int = 0) -> HashedFile:
        fd = _open_regular(self.path(parts), os.O_RDONLY)
        return HashedFile(os.fdopen(fd, "rb", buffering=0), display(parts), writing=False, offset=offset)

    def open_write(self, parts: tuple[str, ...], *, how: str = "replace") -> HashedFile:
        """A file to write: ``replace`` it from the start, ``resume`` it (seek to continue), or
        ``append`` to it."""
        if not parts:
            raise PathRefused("Name a file, not the home folder.")
        target = self.path(parts)
        if self.kind(parts) is None:
            check_new_name(parts[-1])
        # Read as well as write: a resumed file's first part is hashed from the disk.
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if how == "replace" else 0)
        fd = _open_regular(target, flags)
        handle = os.fdopen(fd, "r+b", buffering=0)
        offset = os.fstat(fd).st_size if how == "append" else 0
        return HashedFile(handle, display(parts), writing=True, offset=offset)

    # --- folders and names ----------------------------------------------------------------------

    def make_folder(self, parts: tuple[str, ...]) -> None:
        if not parts:
            raise PathRefused("The home folder exists already.")
        check_new_name(parts[-1])
        os.mkdir(self.path(parts), 0o700)

    def remove_folder(self, parts: tuple[str, ...]) -> None:
        if not parts:
            raise PathRefused("The home folder itself cannot be removed.")
        if self.kind(parts) != "folder":
            raise PathRefused(f"{display(parts)} is not a folder.")
        os.rmdir(self.path(parts))

    def remove_file(self, parts: tuple[str, ...]) -> None:
        kind = self.kind(parts)
        if kind is None:
            raise FileNotFoundError(2, "No such file", display(parts))
        if kind != "file":
            raise PathRefused(f"{display(parts)} is not a file.")
        os.unlink(self.path(parts))

    def rename(self, source: tuple[str, ...], target: tuple[str, ...]) -> None:
        if not source or not target:
            raise PathRefused("The home folder itself cannot be renamed.")
        if self.kind(source) not in ("file", "folder"):
            raise FileNotFoundError(2, "No such file or folder", display(source))
        if target[: len(source)] == source:
            raise PathRefused("A folder cannot be moved into itself.")
        check_new_name(target[-1])
        os.rename(self.path(source), self.path(target))

    def staging(self, base: Path) -> Path:
        """Where uploads over HTTPS are written until they are complete: beside the home folders,
        on the same file system (so the finished file is moved in at once), under a name no
        username can have."""
        folder = Path(base) / "#uploads"
        folder.mkdir(mode=0o700, exist_ok=True)
        # What a server stopped mid-upload left behind goes after a day.
        stale = time.time() - STALE_UPLOAD_SECONDS
        with os.scandir(folder) as leftovers:
            for item in leftovers:
                try:
                    if item.is_file(follow_symlinks=False) and item.stat(follow_symlinks=False).st_mtime < stale:
                        os.unlink(item.path)
                except OSError:
                    pass
        return folder


def _open_regular(path: Path, flags: int) -> int:
    """Open a regular file without following a link, and without blocking on a FIFO."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == getattr(os, "ELOOP", 40) or exc.errno == 40:
            raise PathRefused("That is a link; links are not followed.") from None
        if exc.errno == 6:  # ENXIO: a FIFO with nobody at the other end
            raise PathRefused("That is not a regular file.") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PathRefused("That is not a regular file.")
    os.set_blocking(fd, True)
    return fd


class HashedFile:
    """A file being transferred, with the SHA-256 of the whole file computed as it streams.

    A transfer that resumes at an offset hashes the part before it from the disk first (a
    read of the file, not of the network), so the digest is always that of the whole file.
    ``sha256()`` is the digest once the transfer ended; ``transferred`` counts the bytes
    that crossed the network.
    """

    def __init__(self, handle, name: str, *, writing: bool, offset: int = 0):
        self._handle = handle
        self.name = name
        self.writing = writing
        self.offset = 0
        self.transferred = 0
        self._hash = hashlib.sha256()
        self._digest: str | None = None
        self._position = 0
        if offset:
            self.seek(offset)

    @property
    def size(self) -> int:
        """The file's size on disk now."""
        return os.fstat(self._handle.fileno()).st_size

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def seek(self, offset: int, whence: int = 0) -> int:
        """Only forward from the start, before any data moved (REST)."""
        if whence != 0 or self.transferred or self._position:
            raise OSError(29, "Cannot reposition a transfer once it started")
        size = os.fstat(self._handle.fileno()).st_size
        if offset > size:
            raise ValueError(f"offset {offset} is beyond the end of the file ({size} bytes)")
        self._hash_from_disk(0, offset)
        self._handle.seek(offset)
        self.offset = self._position = offset
        return offset

    def tell(self) -> int:
        return self._position

    def _hash_from_disk(self, start: int, end: int | None) -> None:
        fd = self._handle.fileno()
        position = start
        while end is None or position < end:
            chunk = os.pread(fd, READ_CHUNK if end is None else min(READ_CHUNK, end - position), position)
            if not chunk:
                break
            self._hash.update(chunk)
            position += len(chunk)

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size if size and size > 0 else READ_CHUNK)
        if data:
            self._hash.update(data)
            self._position += len(data)
            self.transferred += len(data)
        return data or b""

    def write(self, data) -> int:
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += self._handle.write(view[written:])
        self._hash.update(view)
        self._position += written
        self.transferred += written
        return written

    def sha256(self) -> str:
        """The file's digest (final once the file is closed)."""
        return self._digest if self._digest is not None else self._hash.hexdigest()

    def close(self) -> None:
        """Close the file. A written file that goes on past what was written (a resumed upload
        that stopped short of the old end) has the rest hashed from the disk first."""
        if self._handle.closed:
            return
        try:
            if self.writing:
                self._hash_from_disk(self._position, None)
            self._digest = self._hash.hexdigest()
        finally:
            self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
