"""Sign-on by client certificate: the middleware half of the pair, as Django's RemoteUserMiddleware.

The middleware only reads what arrived (the certificate the front proxy forwarded, or the
one the built-in HTTPS server received) and manages the session. Whom a certificate signs
on, by which rule, and what is recorded, ``signon.flows`` decides.
"""

import logging
import threading
from functools import cached_property

import cachetools
from django.conf import settings
from django.shortcuts import render
from django.urls import reverse

from certs.loading import CertificateLoadError, load_der
from users.pages import client_address

from . import flows, proxy, session

logger = logging.getLogger(__name__)

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
    # Decided on every request by what was presented, never by a session (the forward-auth gate).
    sessionless_prefixes = ("/auth/forward",)

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
            return render(request, "signon/bad_certificate.html", {"reason": str(exc)}, status=400)
        request.client_certificate = presented
        if request.path.startswith(self.sessionless_prefixes):
            return None
        if request.user.is_authenticated:
            how = session.how(request)
            problem = flows.still_signed_on(request.user, how.method, how.certificate, presented)
            if problem is None:
                return None
            session.end(request, problem)
        if presented.cert is not None and self.may_try(request, presented):
            self.try_certificate(request, presented)
        return None

    # --- reading what arrived -----------------------------------------------------------------

    def get_presented_certificate(self, request) -> proxy.Presented:
        """By default, the certificate the built-in server received, or the proxy's headers."""
        if self.proxy_format == "builtin":
            der = request.META.get(proxy.TLS_CERT_ENVIRON_KEY)
            if not der:
                return proxy.NOTHING
            try:
                chain = tuple(load_der(item) for item in request.META.get(proxy.TLS_CHAIN_ENVIRON_KEY) or ())
                return proxy.Presented(load_der(der), chain[: proxy.MAX_CHAIN])
            except CertificateLoadError as exc:
                raise proxy.ForwardedCertError(f"The client certificate cannot be read: {exc}") from None
        if not self.from_trusted_proxy(request):
            if request.META.get(meta_name(self.header_names.cert)):
                address = request.META.get("REMOTE_ADDR")
                logger.warning("Ignored a client certificate header from %s, which is not a configured proxy.", address)
                flows.record_untrusted_header(address)
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

    # --- signing on by certificate alone --------------------------------------------------------

    def may_try(self, request, presented) -> bool:
        """By default, try unless the user signed out of this certificate, or the sign-in form
        is being posted (the form decides who signs on; a certificate must not overrule it)."""
        if session.signed_out_of(request, presented.cert):
            return False
        return not (request.method == "POST" and request.path == self.login_path)

    @cached_property
    def login_path(self) -> str:
        return reverse("login")

    def try_certificate(self, request, presented):
        # Judged afresh on every request: a certificate accepted a moment ago works at once.
        decision = flows.decide(presented)
        decision.source_address = client_address(request)
        with flows.one_commit():
            flows.record(decision, automatic=True)
            if decision.ok:
                session.start(request, decision)
        if decision.password_needed_for is not None:
            session.wait_for_password(request, decision)
