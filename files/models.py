"""Transfers: every upload and download over either interface, with the file's SHA-256."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.log import day_bounds
from users.models import Interface, User


class Direction(models.TextChoices):
    UPLOAD = "upload", "Upload"
    DOWNLOAD = "download", "Download"


class Result(models.TextChoices):
    COMPLETE = "complete", "Complete"
    ABORTED = "aborted", "Aborted"  # the client went away or cancelled
    FAILED = "failed", "Failed"  # the server could not finish it (disk full, a refused name)


class TransferQuerySet(models.QuerySet):
    def matching(self, *, username: str = "", interface: str = "", date_from=None, date_to=None):
        """Transfers in a user's folder (the username as given or as typed in any case), over
        an interface, finished on the days from ``date_from`` to ``date_to`` (both included)."""
        found = self
        if username:
            user = User.objects.find(username)
            found = found.filter(username=user.username if user is not None else username)
        if interface:
            found = found.filter(interface=interface)
        since, until = day_bounds(date_from, date_to)
        if since is not None:
            found = found.filter(finished_at__gte=since)
        if until is not None:
            found = found.filter(finished_at__lt=until)
        return found


class Transfer(models.Model):
    """One file moved in or out of a home folder.

    ``size`` counts the bytes that crossed the network; ``offset`` is where a resumed
    transfer started. ``sha256`` is the digest of the whole file as it stands after an
    upload or as it was sent in a download, computed while the bytes streamed; it is left
    empty for a transfer that did not complete, whose file is not what anyone has.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150)  # whose folder: outlives a deleted user
    actor_name = models.CharField(max_length=150, blank=True)  # who moved it, when not the owner
    interface = models.CharField(max_length=8, choices=Interface.choices)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    path = models.CharField(max_length=1100)
    size = models.BigIntegerField(default=0)
    offset = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    result = models.CharField(max_length=8, choices=Result.choices)
    reason = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(default=timezone.now)
    source_address = models.GenericIPAddressField(null=True, blank=True)

    objects = TransferQuerySet.as_manager()

    class Meta:
        ordering = ["-finished_at", "-id"]
        indexes = [
            models.Index(fields=["-finished_at", "-id"], name="transfer_newest_first"),
            models.Index(fields=["username", "-finished_at"], name="transfer_by_user"),
            models.Index(fields=["interface", "-finished_at"], name="transfer_by_interface"),
        ]

    def __str__(self):
        return f"{self.username} {self.direction} {self.path} over {self.interface}: {self.result}"

    @property
    def seconds(self) -> float:
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)
