"""The FTPS view of a home folder: pyftpdlib's file system, confined to the user's home.

Paths reach this class already checked by ``files.homes.names`` (the handler refuses bad ones
with a reply first), and every operation goes through ``files.homes.Home``, which the Files
pages use too: files are opened without following links, only regular files are opened,
listings leave out links, special files and names no client could safely be shown, and files
are read and written through ``HashedFile`` so that every transfer knows its SHA-256.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from pyftpdlib.filesystems import AbstractedFS, FilesystemError

from files import flows
from files.homes import Home, PathRefused
from users.models import Interface


class HomeFS(AbstractedFS):
    def __init__(self, root, cmd_channel):
        super().__init__(root, cmd_channel)
        self.home = Home(Path(root))

    def parts(self, path: str) -> tuple[str, ...]:
        found = self.home.parts_of(path)
        if found is None:
            raise FilesystemError("That path is outside your home folder.")
        return found

    @property
    def cwd_parts(self) -> tuple[str, ...]:
        return tuple(name for name in self.cwd.split("/") if name)

    def validpath(self, path) -> bool:
        parts = self.home.parts_of(path)
        if parts is None:
            return False
        try:
            self.home.path(parts)
        except PathRefused:
            return False
        return True

    def open(self, filename, mode):
        parts = self.parts(filename)
        try:
            if "r" in mode and "+" not in mode:
                file = self.home.open_read(parts)
            else:
                how = "append" if "a" in mode else "resume" if "+" in mode else "replace"
                file = self.home.open_write(parts, how=how)
        except PathRefused as exc:
            raise FilesystemError(str(exc)) from None
        self.cmd_channel.transfer_opened(file, parts)
        return file

    def mkstemp(self, *args, **kwargs):
        raise FilesystemError("STOU is not offered; name the file with STOR.")

    def chdir(self, path):
        # Never the process's working directory: every connection runs in a thread of one process.
        if self.home.kind(self.parts(path)) != "folder":
            raise OSError(errno.ENOTDIR, "Not a folder")
        self.cwd = self.fs2ftp(path)

    def listdir(self, path):
        return [entry.name for entry in self.home.entries(self.parts(path))]

    listdirinfo = listdir

    def chmod(self, path, mode):
        raise FilesystemError("File modes cannot be changed.")

    def readlink(self, path):
        raise FilesystemError("Links are not followed.")

    def _change(self, action, *parts, **kwargs):
        """A change made through the use case the Files pages use too (which audits it)."""
        channel = self.cmd_channel
        try:
            action(channel.user, *parts, interface=Interface.FTPS, source_address=channel.remote_ip, **kwargs)
        except PathRefused as exc:
            raise FilesystemError(str(exc)) from None

    def rename(self, src, dst):
        self._change(flows.rename, self.parts(src), self.parts(dst))

    def mkdir(self, path):
        self._change(flows.make_folder, self.parts(path))

    def rmdir(self, path):
        self._change(flows.remove_folder, self.parts(path))

    def remove(self, path):
        self._change(flows.delete_file, self.parts(path))

    # Listings name the user as owner, not the service's system account.
    def get_user_by_uid(self, uid):
        return self.cmd_channel.username or "user"

    def get_group_by_gid(self, gid):
        return "mft"

    def stat(self, path):
        return os.lstat(path)  # a link is shown as what it is, never as what it points to
