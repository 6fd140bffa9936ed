"""The audit log: who changed what, when and from where; and who added each stored thing.

The bottom of the import order: every app records here, and this app imports none of them.
The user model is reached as ``settings.AUTH_USER_MODEL``.
"""

import datetime
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.db.models import F
from django.utils import timezone

ACTOR_NAME_LENGTH = 200


def actor_parts(actor) -> tuple[AbstractBaseUser | None, str]:
    """(the user, the name kept beside it) for whoever acts.

    ``actor`` is a user, or a string naming who acts when no user does ("command line
    (root)", "sign-on"). The name outlives a deleted user.
    """
    user = actor if isinstance(actor, AbstractBaseUser) else None
    return user, (str(actor)[:ACTOR_NAME_LENGTH] if actor is not None else "")


def storable(value):
    """``value`` with every NUL character written out as ``\\x00``: PostgreSQL stores no NUL in
    text or JSON, and what a client presented (a CN, a username) may hold one."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value]
    return value


class AddedBy(models.Model):
    """Who added a stored thing and when: the user (if one did) and a name that outlives them."""

    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_by_name = models.CharField(max_length=ACTOR_NAME_LENGTH, blank=True)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    @staticmethod
    def by(actor) -> dict:
        """The field values for ``actor``: ``Model.objects.create(..., **Model.by(actor))``."""
        user, name = actor_parts(actor)
        return {"added_by": user, "added_by_name": name}


# Sign-on decisions that repeat (a script without a cookie jar signs on with every request)
# are folded into the first event of their kind: at most one row a minute per kind and
# process, whose ``repeats`` and ``last_at`` count the rest. Counts are written every few
# seconds; a crash loses at most those few seconds of counting, never the first event.
FOLD_WINDOW_SECONDS = 60.0
FOLD_FLUSH_SECONDS = 5.0
FOLD_MAX_KINDS = 10_000


@dataclass
class _Fold:
    event_id: int
    started: float
    flushed: float
    pending: int = 0
    last_at: datetime.datetime | None = None


_folds: "OrderedDict[tuple, _Fold]" = OrderedDict()
_folds_lock = threading.Lock()
_last_sweep = [0.0]


class AuditEventManager(models.Manager):
    def record(self, actor, action: str, summary: str, *, target=None, detail=None, source_address=None):
        """Write one audit event.

        ``actor`` is a user, or a string naming who acted when no user did (the command
        line, the sign-on engine); ``target`` the user the change was about, if any.
        """
        user, name = actor_parts(actor)
        return self.create(
            actor=user,
            actor_name=storable(name),
            action=action,
            summary=storable(summary),
            target_user=target,
            target_name=target.get_username() if target is not None else "",
            detail=storable(detail or {}),
            source_address=source_address or None,
        )

    def record_repeatable(self, fold_key: tuple, actor, action: str, summary: str, *, on_new=None, **fields):
        """Record an event, or count it against the same kind of event recorded moments ago.

        ``on_new`` is called before a new event is written (not for a counted repeat).
        """
        now = time.monotonic()
        due = []
        with _folds_lock:
            fold = _folds.get(fold_key)
            if fold is not None and now - fold.started < FOLD_WINDOW_SECONDS:
                fold.pending += 1
                fold.last_at = timezone.now()
                if now - fold.flushed >= FOLD_FLUSH_SECONDS:
                    due.append(self._take(fold, now))
                counted = True
            else:
                counted = False
                if fold is not None and fold.pending:
                    due.append(self._take(fold, now))
                _folds.pop(fold_key, None)
                while len(_folds) >= FOLD_MAX_KINDS:
                    _, oldest = _folds.popitem(last=False)
                    if oldest.pending:
                        due.append(self._take(oldest, now))
            if now - _last_sweep[0] >= FOLD_FLUSH_SECONDS:
                # Counts of other kinds are due too, even when their kind does not come again.
                _last_sweep[0] = now
                due.extend(
                    self._take(other, now)
                    for other in _folds.values()
                    if other.pending and now - other.flushed >= FOLD_FLUSH_SECONDS
                )
        self._write_counts(due)
        if counted:
            return None
        if on_new is not None:
            on_new()
        event = self.record(actor, action, summary, **fields)
        with _folds_lock:
            _folds[fold_key] = _Fold(event.pk, now, now)
        return event

    @staticmethod
    def _take(fold: _Fold, now: float) -> tuple[int, int, datetime.datetime]:
        counted = (fold.event_id, fold.pending, fold.last_at)
        fold.pending, fold.flushed = 0, now
        return counted

    def _write_counts(self, counts) -> None:
        for event_id, pending, last_at in counts:
            if not self.filter(pk=event_id).update(repeats=F("repeats") + pending, last_at=last_at):
                # The entry is gone (a retention clean-up): let the next of its kind start a new one.
                with _folds_lock:
                    for key in [k for k, fold in _folds.items() if fold.event_id == event_id]:
                        del _folds[key]

    def flush_repeats(self) -> None:
        """Write every pending count now (at exit, and in tests)."""
        now = time.monotonic()
        with _folds_lock:
            due = [self._take(fold, now) for fold in _folds.values() if fold.pending]
            _folds.clear()
        self._write_counts(due)

    def forget_repeats(self) -> None:
        """Drop pending counts without writing them: every event after this starts a new entry."""
        with _folds_lock:
            _folds.clear()


class AuditEvent(models.Model):
    """Who changed what, when and from where: every administrative change is recorded."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=ACTOR_NAME_LENGTH, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    summary = models.TextField()
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    target_name = models.CharField(max_length=150, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    # The same sign-on decision again shortly after: how many more times, and the last time.
    repeats = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField(null=True, blank=True)

    objects = AuditEventManager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at", "-id"], name="audit_newest_first"),
            models.Index(fields=["actor_name"], name="audit_actor"),
            models.Index(fields=["target_name"], name="audit_target"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name}: {self.summary}"

    @property
    def action_label(self) -> str:
        return action_label(self.action)


# What each action is called on pages; an action without a label here gets one made of its name.
ACTION_LABELS = {
    "user.create": "User created",
    "user.update": "User changed",
    "user.password": "Password set",
    "user.delete": "User deleted",
    "user.policy": "Sign-on mode changed",
    "defaults.set": "Default sign-on mode changed",
    "defaults.apply": "Defaults applied to all users",
    "root.add": "Trusted root installed",
    "root.remove": "Trusted root removed",
    "intermediate.add": "Intermediate CA added",
    "intermediate.remove": "Intermediate CA removed",
    "approved.add": "CA approved",
    "approved.remove": "CA no longer approved",
    "match_cn.set": "Match CN switched",
    "crl.add": "CRL added",
    "crl.remove": "CRL removed",
    "revocation.set": "Revocation policy changed",
    "credential.add": "Certificate entry added",
    "credential.remove": "Certificate entry removed",
    "tank.accept": "Holding-tank entry accepted",
    "tank.remove": "Holding-tank entry removed",
    "org_ca.create": "Org CA created",
    "org_ca.import": "Org CA imported",
    "certificate.issue": "Certificate issued",
    "certificate.revoke": "Certificate revoked",
    "signon.success": "Signed on",
    "signon.refused": "Sign-on refused",
    "signon.throttled": "Sign-on paused (too many failed passwords)",
    "signon.ended": "Session ended",
    "signon.untrusted_header": "Forged certificate header ignored",
    "tls.context_failed": "Built-in server kept its old trusted roots",
}


def action_label(action: str) -> str:
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    words = action.replace("_", " ").replace(".", " ")
    return words[:1].upper() + words[1:]
