"""Asking OCSP responders, and the database cache of their answers.

``ask`` is what the revocation engine calls for a certificate whose policy checks OCSP: a
cached answer still fresh is judged again and used; otherwise the responders the certificate
names (authority information access) are asked over HTTP, within ``MFT_OCSP_TIMEOUT`` seconds in
all, and a verified answer is kept until its next update, for every instance. A responder that
cannot be reached, or whose answer does not verify, makes the status unknown: the policy then
refuses or allows. Nothing here can hold sign-on for longer than the timeout (plus the time
to resolve the responder's host name).

A responder that cannot be reached, or does not answer in time, is left alone for a while
(``MFT_OCSP_BACKOFF_SECONDS``, doubling with each failure in a row up to
``MFT_OCSP_BACKOFF_MAX_SECONDS``; an answer resets it): meanwhile its certificates' status is
unknown at once, and the reason names the responder, its last failure and when it is asked again.
The backoff is kept in the shared cache, so every instance leaves the responder alone together.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import time
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from . import ocsp
from .models import OcspResponse

# OCSP answers are small; a responder sending more is not one.
MAX_RESPONSE_BYTES = 256 * 1024
# At most this many responders are asked for one certificate.
MAX_RESPONDERS = 2


class FetchError(Exception):
    """A responder could not be asked; the message completes "the OCSP responder URL ...".
    ``backoff``: the responder could not be reached or did not answer in time, so it is left
    alone for a while."""

    def __init__(self, message: str, backoff: bool = False):
        super().__init__(message)
        self.backoff = backoff


def ask(cert: x509.Certificate, issuer: x509.Certificate, at) -> ocsp.Answer:
    urls = ocsp.responder_urls(cert)
    if not urls:
        return ocsp.unknown(
            "the certificate names no OCSP responder (no OCSP address in its authority information access)", ""
        )
    try:
        key = ocsp.cert_id_key(cert, issuer)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return ocsp.unknown("no OCSP request can be made for it (its issuer's key or name cannot be hashed)", "")
    try:
        row = OcspResponse.objects.filter(cert_id=key).first()
    except DatabaseError:
        row = None  # the responder is asked instead
    if row is not None:
        answer = ocsp.judge(bytes(row.der), cert, issuer, at, row.responder)
        if answer.cacheable and _reusable(answer):
            return answer
        if answer.cacheable:
            # Stored before delegated responders were checked: it must not keep the responder
            # from being asked until its next update.
            OcspResponse.objects.filter(pk=row.pk).delete()
    deadline = time.monotonic() + float(settings.MFT_OCSP_TIMEOUT)
    answers = []
    for url in urls[:MAX_RESPONDERS]:
        failed = backoff(url)
        if failed is not None and time.time() < failed["until"]:
            answers.append(ocsp.unknown(_waiting(failed), url))
            continue
        nonce = os.urandom(16)
        try:
            der = fetch(url, ocsp.build_request(cert, issuer, nonce), deadline)
        except FetchError as exc:
            if exc.backoff:
                _failed(url, str(exc), failed)
            answers.append(ocsp.unknown(str(exc), url))
            continue
        if failed is not None:
            _cache(cache.delete, _backoff_key(url))  # it answers again
        answer = ocsp.judge(der, cert, issuer, at, url, nonce)
        if answer.cacheable:
            if _reusable(answer):
                keep(key, url, der, answer)
            return answer
        answers.append(answer)
    return answers[0]


def _reusable(answer: ocsp.Answer) -> bool:
    """Whether a verified answer may be stored for other decisions: not one signed by a delegated
    responder whose own status must be checked (its certificate has no id-pkix-ocsp-nocheck). The
    engine checks that responder by CRL at each decision and may refuse to trust it; a stored
    answer would keep the responder from being asked again until its next update, which whoever
    holds a revoked responder's key could set far ahead."""
    return answer.delegate is None or not ocsp.needs_status_check(answer.delegate)


def _cache(operation, *args, **kwargs):
    """A cache operation whose failure (the shared cache unreachable) counts as no backoff: the
    responder is asked, as if it had not failed lately."""
    try:
        return operation(*args, **kwargs)
    except Exception:  # noqa: BLE001 - any cache backend's error
        return None


def _backoff_key(url: str) -> str:
    return "mft:ocsp-backoff:" + hashlib.sha256(url.encode()).hexdigest()


def backoff(url: str) -> dict | None:
    """The responder's last failures, if it failed lately: {failures, failed_at, until, why}
    (``time.time()`` moments, shared by every instance)."""
    found = _cache(cache.get, _backoff_key(url))
    if not isinstance(found, dict) or not isinstance(found.get("why"), str):
        return None
    numbers = (found.get("failures"), found.get("failed_at"), found.get("until"))
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        return None
    return found


def _failed(url: str, why: str, before: dict | None) -> None:
    failures = (before["failures"] if before is not None else 0) + 1
    base = float(settings.MFT_OCSP_BACKOFF_SECONDS)
    cap = max(float(settings.MFT_OCSP_BACKOFF_MAX_SECONDS), base)
    wait = min(base * 2 ** min(failures - 1, 20), cap)
    now = time.time()
    state = {"failures": failures, "failed_at": now, "until": now + wait, "why": why}
    # Kept past the wait, so that a failure when it is asked again doubles the wait.
    _cache(cache.set, _backoff_key(url), state, timeout=int(wait + cap) + 1)


def _waiting(failed: dict) -> str:
    return (
        f"was not asked: it {failed['why']} at {_moment(failed['failed_at'])} "
        f"({failed['failures']} failure{'s' if failed['failures'] != 1 else ''} in a row), "
        f"so it is not asked again before {_moment(failed['until'])}"
    )


def _moment(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def prune(now=None) -> int:
    """Delete the stored answers that no longer count (past their next update, or their short
    life without one), for cron; how many. An answer is never used past ``usable_until`` (no
    revocation policy's grace applies to OCSP), so nothing is lost; the margin of the clock
    allowance keeps one a little longer for an instance whose clock runs behind."""
    now = now or timezone.now()
    deleted, _ = OcspResponse.objects.filter(usable_until__lt=now - ocsp.CLOCK_SKEW).delete()
    return deleted


def keep(key: str, url: str, der: bytes, answer: ocsp.Answer) -> None:
    """Store a verified answer in the one row of its certificate ID (replacing the answer there),
    unless the answer there is newer: an older answer sent again is no news."""
    fields = {
        "responder": url[:2000],
        "der": der,
        "status": answer.status,
        "this_update": answer.this_update,
        "next_update": answer.next_update,
        "usable_until": answer.usable_until,
        "fetched_at": timezone.now(),
    }
    try:
        with transaction.atomic():
            updated = OcspResponse.objects.filter(cert_id=key, this_update__lte=answer.this_update).update(**fields)
            if not updated and not OcspResponse.objects.filter(cert_id=key).exists():
                OcspResponse.objects.create(cert_id=key, **fields)
    except (IntegrityError, DatabaseError):
        pass  # another instance stored one meanwhile; this answer is used all the same


def fetch(url: str, body: bytes, deadline: float) -> bytes:
    """POST an OCSP request to ``url`` and return the answer's body, by ``deadline`` (a
    ``time.monotonic()`` moment) whatever the responder does: the exchange runs in a thread of
    its own, and its connection is cut when the time is up."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("has an address the app cannot use")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError("was not asked: the time for OCSP ran out")
    try:
        port = parts.port
    except ValueError:
        raise FetchError("has an address with a bad port") from None
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    # The socket's own timeout is a backstop: the exchange is cut at the deadline below.
    connection = kind(parts.hostname, port, timeout=remaining + 1)
    late = f"did not answer within {float(settings.MFT_OCSP_TIMEOUT):g} seconds"
    # Too slow is the responder's fault only if it had a fair share of the time (a second
    # responder may get what the first left over): only then is it left alone for a while.
    fair = remaining >= float(settings.MFT_OCSP_TIMEOUT) / 2
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    outcome: dict = {}

    def exchange():
        try:
            connection.request(
                "POST",
                path,
                body=body,
                headers={"Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"},
            )
            response = connection.getresponse()
            if response.status != 200:
                outcome["error"] = f"answered HTTP {response.status} {response.reason}".strip()
                return
            data = response.read(MAX_RESPONSE_BYTES + 1)
            if len(data) > MAX_RESPONSE_BYTES:
                outcome["error"] = f"sent more than {MAX_RESPONSE_BYTES // 1024} KiB, which is no OCSP answer"
                return
            outcome["data"] = data
        except TimeoutError:
            outcome["error"], outcome["unreachable"] = late, fair
        except (OSError, http.client.HTTPException) as exc:
            outcome["error"], outcome["unreachable"] = f"could not be reached ({_words(exc)})", True

    worker = threading.Thread(target=exchange, name="ocsp-fetch", daemon=True)
    worker.start()
    worker.join(remaining)
    if worker.is_alive():
        _cut(connection)
        raise FetchError(late, backoff=fair)
    connection.close()
    if "error" in outcome:
        raise FetchError(outcome["error"], backoff=outcome.get("unreachable", False))
    return outcome["data"]


def _cut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    connection.close()


def _words(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "its host name cannot be resolved"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return (text[:1].lower() + text[1:])[:200]
