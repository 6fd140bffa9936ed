"""Use cases of home folders: a user's folder, changes made in it, and the record of every transfer.

The Files pages (HTTPS) and the FTPS server both come here, so a file is moved, named and
recorded by the same rules whichever way it travels. ``actor`` is the user who acts: the
folder's owner, or an administrator working in someone's folder.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from audit.models import AuditEvent
from audit.paging import PAGE_SIZE, Page, keyset_page
from users.flows import Removal
from users.models import Interface

from .homes import Home, display, folder_name
from .models import Direction, Result, Transfer


def home(user) -> Home:
    """The user's home folder, made on first use."""
    return Home.create(settings.MFT_FILES_DIR, user.username)


def _folder_of(username: str) -> Path:
    return Path(settings.MFT_FILES_DIR) / folder_name(username)


def files_of(user) -> list[Removal]:
    """What of a user's is kept here, for the confirmation before deleting them."""
    folder = _folder_of(user.username)
    count = size = 0
    if folder.is_dir() and not folder.is_symlink():
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                count, size = count + 1, size + path.stat().st_size
        sentence = f"The home folder, with {count} file{'s' if count != 1 else ''} ({filesizeformat(size)})."
    else:
        sentence = ""
    return [Removal(sentence, {"files": count, "file_bytes": size})]


def remove_home_folder(username: str) -> None:
    """Delete a user's home folder (links inside are removed, never followed): a new user of the
    same name must not find the old one's files."""
    folder = _folder_of(username)
    if folder.is_symlink():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)


def _actor_note(actor, owner) -> str:
    return "" if actor is None or actor.pk == owner.pk else f" (by {actor.username})"


def record_transfer(
    owner,
    *,
    interface: str,
    direction: str,
    parts: tuple[str, ...],
    size: int,
    sha256: str,
    result: str,
    started_at: dt.datetime,
    source_address: str | None = None,
    offset: int = 0,
    reason: str = "",
    actor=None,
) -> Transfer:
    """Record a finished (or abandoned) transfer, in the transfers list and the audit log."""
    path = display(parts)
    transfer = Transfer.objects.create(
        user=owner,
        username=owner.username,
        actor_name="" if actor is None or actor.pk == owner.pk else actor.username,
        interface=interface,
        direction=direction,
        path=path[:1100],
        size=size,
        offset=offset,
        sha256=sha256 if result == Result.COMPLETE else "",
        result=result,
        reason=reason[:300],
        started_at=started_at,
        finished_at=timezone.now(),
        source_address=source_address or None,
    )
    verb = "uploaded" if direction == Direction.UPLOAD else "downloaded"
    label = Interface(interface).label
    if result == Result.COMPLETE:
        resumed = f", resumed at byte {offset:,}" if offset else ""
        summary = (
            f"{owner.username}{_actor_note(actor, owner)} {verb} {path} over {label} "
            f"({size:,} bytes{resumed}; SHA-256 {sha256})."
        )
    else:
        why = f": {reason}" if reason else ""
        summary = (
            f"{owner.username}{_actor_note(actor, owner)} {verb} {path} over {label}: "
            f"{Result(result).label.lower()} after {size:,} bytes{why}."
        )
    AuditEvent.objects.record(
        actor or owner,
        f"file.{direction}",
        summary[:1000],
        target=owner,
        source_address=source_address,
        detail={
            "interface": interface,
            "path": path,
            "size": size,
            "offset": offset,
            "file_sha256": transfer.sha256 or None,
            "result": result,
            "transfer": transfer.pk,
        },
    )
    return transfer


def transfer_page(found, *, after=None, before=None, size=PAGE_SIZE) -> Page:
    """A page of transfers (``Transfer.objects.matching``), newest first; ``after``/``before``
    are (finished_at, id) pairs."""
    return keyset_page(found, ("finished_at", "id"), descending=True, after=after, before=before, size=size)


def transfer_as_dict(transfer: Transfer) -> dict:
    """A transfer as the API answers it (a public format): what the Transfers page shows."""
    return {
        "id": transfer.pk,
        "user": transfer.username,
        "actor": transfer.actor_name or None,
        "interface": transfer.interface,
        "direction": transfer.direction,
        "path": transfer.path,
        "size": transfer.size,
        "offset": transfer.offset,
        "sha256": transfer.sha256 or None,
        "result": transfer.result,
        "reason": transfer.reason,
        "started_at": transfer.started_at.isoformat(),
        "finished_at": transfer.finished_at.isoformat(),
        "source_address": transfer.source_address,
    }


def record_change(owner, action: str, summary: str, *, interface: str, source_address=None, actor=None, **detail):
    """Audit a change in a home folder (a deletion, a new folder, a rename)."""
    label = Interface(interface).label
    AuditEvent.objects.record(
        actor or owner,
        f"file.{action}",
        f"{owner.username}{_actor_note(actor, owner)} {summary} over {label}."[:1000],
        target=owner,
        source_address=source_address,
        detail={"interface": interface, **detail},
    )


# What each change does to the folder, how the audit log says it, and what the person is told.
_CHANGES = {
    "delete": (Home.remove_file, "deleted {path}", "Deleted {path}."),
    "mkdir": (Home.make_folder, "made the folder {path}", "Made the folder {path}."),
    "rmdir": (Home.remove_folder, "removed the folder {path}", "Removed the folder {path}."),
}


def _change(action: str, owner, parts, *, interface: str, source_address=None, actor=None) -> str:
    change, summary, message = _CHANGES[action]
    change(home(owner), parts)
    path = display(parts)
    record_change(
        owner,
        action,
        summary.format(path=path),
        interface=interface,
        source_address=source_address,
        actor=actor,
        path=path,
    )
    return message.format(path=path)


def delete_file(owner, parts, **how) -> str:
    """Delete a file (``how``: interface, source_address, actor)."""
    return _change("delete", owner, parts, **how)


def make_folder(owner, parts, **how) -> str:
    return _change("mkdir", owner, parts, **how)


def remove_folder(owner, parts, **how) -> str:
    """Remove an empty folder."""
    return _change("rmdir", owner, parts, **how)


def rename(owner, source, target, *, interface: str, source_address=None, actor=None) -> str:
    home(owner).rename(source, target)
    record_change(
        owner,
        "rename",
        f"renamed {display(source)} to {display(target)}",
        interface=interface,
        source_address=source_address,
        actor=actor,
        path=display(source),
        to=display(target),
    )
    return f"Renamed {display(source)} to {display(target)}."
