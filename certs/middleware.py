"""Sign-on by client certificate: the middleware half of Django's RemoteUser pair.

The middleware only reads what arrived (the certificate the front proxy forwarded, or the
one the built-in HTTPS server received) and manages the session. Whom a certificate signs
on, and by which rule, is for ``SignOnBackend`` and ``flows.sign_on`` to say.
"""

import hashlib
import logging
import threading
from contextlib import nullcontext
from functools import cached_property

import cachetools
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.db import connection, transaction
from django.dispatch import receiver
from django.shortcuts import render
from django.urls import reverse

from audit.models import AuditEvent
from users.access import client_address

from . import flows, proxy
from .x509 import CertificateLoadError, load_der, sha256_fingerprint

logger = logging.getLogger(__name__)

# The session remembers how it was signed on: {"method": ..., "rule": ..., "cert": sha256 or None}.
SESSION_KEY = "mft_signon"
# A certificate the user signed out from: not used again by itself in this session.
SIGNED_OUT_KEY = "mft_signed_out_certificate"
# A certificate refused a moment ago, from the same address, is not recorded again at once
# (kept in the cache, not the session: a client without a session must not make one per request).
REFUSED_CACHE_KEY = "mft:refused:{fingerprint}:{address}"
# A certificate that authenticated a user whose mode also wants the password: {"cert", "username"}.
PASSWORD_NEEDED_KEY = "mft_password_needed"
REFUSAL_MEMORY_SECONDS = 10
# The built-in HTTPS server puts the client's certificate and the chain it sent (DER) here;
# clients cannot set these.
TLS_ENVIRON_KEY = "mft.tls_client_cert"  # set by certs.tls.ClientCertWorker
TLS_CHAIN_ENVIRON_KEY = "mft.tls_client_chain"
# Headers about the client that only a proxy may set; from anyone else they are removed.
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED")


# Decoded headers, by their exact text: parsing the same certificate again gives the same result.
_parsed: cachetools.LRUCache = cachetools.LRUCache(maxsize=2048)
_parsed_lock = threading.Lock()


def meta_name(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


class ForwardedHeadersMiddleware:
    """First in line: X-Forwarded-For/-Proto/-Host count only from a configured proxy.

    From any other address (and always with the built-in HTTPS server, which has no proxy)
    they are removed before anything reads them, so that the client's address in the audit
    log and Django's idea of HTTPS (SECURE_PROXY_SSL_HEADER) cannot be forged.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.builtin = settings.MFT_PROXY_FORMAT == "builtin"
        self.trusted_proxies = settings.MFT_TRUSTED_PROXIES

    def __call__(self, request):
        if self.builtin or not proxy.address_in(request.META.get("REMOTE_ADDR"), self.trusted_proxies):
            for name in FORWARDED_HEADERS:
                request.META.pop(name, None)
        return self.get_response(request)


class ClientCertificateMiddleware:
    """Turn a presented client certificate into a Django session, and end it when it goes.

    Sets ``request.client_certificate`` (a ``proxy.Presented``) on every request. A session
    signed on by certificate ends when a request arrives with no certificate or another
    one, or when the certificate stops authenticating the user; any session ends when the
    user's sign-on mode stops allowing the way it was signed on.
    """

    exempt_prefixes = ("/healthz", "/static/")

    def __init__(self, get_response):
        self.get_response = get_response
        self.proxy_format = settings.MFT_PROXY_FORMAT
        self.header_names = settings.MFT_PROXY_HEADERS
        self.trusted_proxies = settings.MFT_TRUSTED_PROXIES

    def __call__(self, request):
        response = self.process_request(request)
        return response if response is not None else self.get_response(request)

    def process_request(self, request):
        request.client_certificate = proxy.NOTHING
        if request.path.startswith(self.exempt_prefixes):
            return None
        try:
            presented = self.get_presented_certificate(request)
        except proxy.ForwardedCertError as exc:
            logger.warning("Refused a request from %s: %s", client_address(request), exc)
            return render(request, "bad_certificate.html", {"reason": str(exc)}, status=400)
        request.client_certificate = presented
        if request.user.is_authenticated:
            problem = self.session_problem(request, presented)
            if problem is None:
                return None
            self.end_session(request, problem)
        if presented.cert is not None and self.may_try(request, presented):
            self.try_certificate(request, presented)
        return None

    # --- reading what arrived -----------------------------------------------------------------

    def get_presented_certificate(self, request) -> proxy.Presented:
        """By default, the certificate the built-in server received, or the proxy's headers."""
        if self.proxy_format == "builtin":
            der = request.META.get(TLS_ENVIRON_KEY)
            if not der:
                return proxy.NOTHING
            try:
                chain = tuple(load_der(item) for item in request.META.get(TLS_CHAIN_ENVIRON_KEY) or ())
                return proxy.Presented(load_der(der), chain[: proxy.MAX_CHAIN])
            except CertificateLoadError as exc:
                raise proxy.ForwardedCertError(f"The client certificate cannot be read: {exc}") from None
        if not self.from_trusted_proxy(request):
            if request.META.get(meta_name(self.header_names.cert)):
                self.note_untrusted_header(request)
            return proxy.NOTHING
        return self.read_headers(request)

    def read_headers(self, request) -> proxy.Presented:
        """Decode the proxy's headers; the same headers again are served from a small cache."""
        names = self.header_names
        key = tuple(request.META.get(meta_name(name)) for name in (names.cert, names.chain, names.verify) if name)
        if self.proxy_format == "apache" or not key[0]:  # numbered chain headers: not worth caching
            return proxy.read_forwarded(self.proxy_format, lambda name: request.META.get(meta_name(name)), names)
        with _parsed_lock:
            found = _parsed.get(key)
        if found is None:
            found = proxy.read_forwarded(self.proxy_format, lambda name: request.META.get(meta_name(name)), names)
            with _parsed_lock:
                _parsed[key] = found
        return found

    def from_trusted_proxy(self, request) -> bool:
        return proxy.address_in(request.META.get("REMOTE_ADDR"), self.trusted_proxies)

    def note_untrusted_header(self, request):
        address = request.META.get("REMOTE_ADDR")
        logger.warning("Ignored a client certificate header from %s, which is not a configured proxy.", address)
        if cache.add("mft:untrusted-header", 1, 60):  # at most one audit entry a minute (the log has each)
            AuditEvent.objects.record(
                "sign-on",
                "signon.untrusted_header",
                f"Ignored a client certificate header sent by {address}, which is not a configured proxy "
                "(MFT_TRUSTED_PROXIES).",
                source_address=address,
            )

    # --- the session ----------------------------------------------------------------------------

    def session_problem(self, request, presented) -> str | None:
        info = request.session.get(SESSION_KEY) or {"method": flows.METHOD_PASSWORD}
        method = info.get("method", flows.METHOD_PASSWORD)
        if method != flows.METHOD_PASSWORD:
            if presented.cert is None:
                return "the certificate is no longer presented"
            if sha256_fingerprint(presented.cert) != info.get("cert"):
                return "another certificate is presented"
        return flows.still_signed_on(request.user, method, presented.cert, presented.chain)

    def end_session(self, request, reason: str):
        user = request.user
        AuditEvent.objects.record(
            "sign-on",
            "signon.ended",
            f"Ended {user.username}'s session: {reason}.",
            target=user,
            source_address=client_address(request),
        )
        auth.logout(request)
        request.user = AnonymousUser()

    # --- signing on by certificate alone --------------------------------------------------------

    def may_try(self, request, presented) -> bool:
        if request.session.get(SIGNED_OUT_KEY) == sha256_fingerprint(presented.cert):
            return False
        # The sign-in form decides who signs on; a certificate must not overrule it.
        return not (request.method == "POST" and request.path == self.login_path)

    @cached_property
    def login_path(self) -> str:
        return reverse("login")

    @staticmethod
    def refused_key(request, presented) -> str:
        """A refusal is remembered for this certificate with this chain, from this address."""
        fingerprints = "+".join(sha256_fingerprint(c) for c in (presented.cert, *presented.chain))
        digest = hashlib.sha256(fingerprints.encode()).hexdigest()
        return REFUSED_CACHE_KEY.format(fingerprint=digest, address=client_address(request))

    def try_certificate(self, request, presented):
        # Judged afresh on every request (a certificate accepted a moment ago works at once),
        # but a refusal repeated by the same client is recorded (holding tank, audit) at most
        # every REFUSAL_MEMORY_SECONDS, so that a client cannot turn requests into writes.
        user = auth.authenticate(request, client_certificate=presented, record_later=True)
        decision = getattr(request, "sign_on", None)
        record = decision is not None and (
            user is not None or cache.add(self.refused_key(request, presented), 1, REFUSAL_MEMORY_SECONDS)
        )
        # On PostgreSQL the decision's records and the new session share one commit (one WAL
        # flush instead of three). SQLite serialises writers and backs off by sleeping, so
        # there short separate writes are faster than one longer transaction.
        with nullcontext() if connection.vendor == "sqlite" else transaction.atomic():
            if record:
                flows.record_sign_on(decision)
            if user is not None:
                request.user = user
                auth.login(request, user)
        if user is None and decision is not None and decision.password_needed_for is not None:
            request.session[PASSWORD_NEEDED_KEY] = {
                "cert": sha256_fingerprint(presented.cert),
                "username": decision.password_needed_for.username,
            }


@receiver(user_logged_in)
def remember_how_the_session_was_signed_on(sender, request, user, **kwargs):
    decision = getattr(request, "sign_on", None) if request is not None else None
    if decision is None or decision.user is None or decision.user.pk != user.pk:
        return
    presented = getattr(request, "client_certificate", proxy.NOTHING)
    uses_certificate = decision.method != flows.METHOD_PASSWORD and presented.cert is not None
    request.session[SESSION_KEY] = {
        "method": decision.method,
        "rule": decision.rule,
        "cert": sha256_fingerprint(presented.cert) if uses_certificate else None,
    }
    for key in (SIGNED_OUT_KEY, PASSWORD_NEEDED_KEY):
        request.session.pop(key, None)
