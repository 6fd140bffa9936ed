"""What the API keeps of its own: the outcome of requests sent with an Idempotency-Key."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotentRequest(models.Model):
    """A write sent with an ``Idempotency-Key``: while it runs (``status`` empty), and then its
    answer, replayed to a retry of the same request by the same user for a day.

    Kept in the database every instance shares, so a retry reaching another worker or instance
    is recognised too. Keys belong to the user who sent them: another user's same key is theirs.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    # SHA-256 of the method, path and body: a key sent again with another request is refused.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    location = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_request_per_idempotency_key")]

    def __str__(self):
        return f"{self.user}: {self.method} {self.path} ({self.key})"
