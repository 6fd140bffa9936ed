"""Sign-on by client certificate: the middleware half of the pair, as Django's RemoteUserMiddleware.

The middleware only reads what arrived (the certificate the front proxy forwarded, or the
one the built-in HTTPS server received) and manages the session. Whom a certificate signs
on, by which rule, and what is recorded, ``signon.flows`` decides.
"""

import functools
import hashlib
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

# Decoded headers, by a digest of their exact text: parsing the same certificate again gives the
# same result. Bounded in bytes (each entry is about the size of its certificates' DER), so a
# client sending endless distinct certificates cannot grow a worker's memory past it.
HEADER_CACHE_BYTES = 8 * 1024 * 1024
_parsed: cachetools.LRUCache = cachetools.LRUCache(maxsize=HEADER_CACHE_BYTES, getsizeof=proxy.Presented.size)
_parsed_lock = threading.Lock()


def header_cache_usage() -> tuple[int, int]:
    """(entries, bytes) of this process's cache of decoded certificate headers."""
    with _parsed_lock:
        return len(_parsed), int(_parsed.currsize)


def meta_name(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def own_header_names(names: proxy.HeaderNames) -> set[str]:
    own = {n for n in (names.cert, names.chain, names.verify) if n}
    if names.chain:
        own.update(proxy.numbered_chain_headers(names.chain))
    return own


class ProxyGateMiddleware:
    """First in line: only the front proxy may say who the client is and what it presented.

    A request is from the proxy when it comes from ``MFT_TRUSTED_PROXIES`` (an address, or the
    app's unix socket) and, with ``MFT_PROXY_SECRET`` set, carries that secret in
    X-MFT-Proxy-Secret. The secret header is removed at once. From anyone else, every header
    only the proxy may set (X-Forwarded-*, the configured certificate headers) is removed before
    anything reads the request; the certificate headers of the other proxy formats are removed
    from every request, so that nothing can read them. With the built-in HTTPS server there is
    no proxy at all.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.builtin = settings.MFT_PROXY_FORMAT == "builtin"
        self.proxies = settings.MFT_TRUSTED_PROXIES
        self.secret = settings.MFT_PROXY_SECRET
        own = set() if self.builtin else own_header_names(settings.MFT_PROXY_HEADERS)
        every = proxy.forwarded_header_names(settings.MFT_PROXY_HEADERS)
        self.own = [meta_name(name) for name in sorted(own)]
        self.foreign = [meta_name(name) for name in every if name not in own]
        self.secret_header = meta_name(proxy.SECRET_HEADER)
        _warn_once(unguarded_proxy_warning())

    def __call__(self, request):
        meta = request.META
        sent_secret = meta.pop(self.secret_header, None)
        from_proxy = (
            not self.builtin
            and meta.get("REMOTE_ADDR") in self.proxies
            and (self.secret is None or proxy.secret_matches(sent_secret, self.secret))
        )
        meta[proxy.FROM_PROXY_ENVIRON_KEY] = from_proxy
        for name in self.foreign:
            meta.pop(name, None)
        if not from_proxy:
            if not self.builtin and any(meta.get(name) for name in self.own):
                self.note_ignored_certificate(request, secret_sent=sent_secret is not None)
            for name in (*self.own, *FORWARDED_HEADERS):
                meta.pop(name, None)
        return self.get_response(request)

    def note_ignored_certificate(self, request, secret_sent: bool):
        address = request.META.get("REMOTE_ADDR")
        if address in self.proxies:
            why = "with a wrong proxy secret" if secret_sent else "without the proxy secret (MFT_PROXY_SECRET)"
        else:
            why = "from an address that is not a configured proxy (MFT_TRUSTED_PROXIES)"
        logger.warning("Ignored a client certificate header sent by %s %s.", address or "a unix socket", why)
        flows.record_ignored_certificate_header(address, why)


@functools.cache
def _warn_once(problem: str | None) -> None:
    if problem:
        logger.warning(problem)


def unguarded_proxy_warning() -> str | None:
    """Behind a proxy reached over TCP without a shared secret, any local process that can
    connect from a trusted address can send a certificate header and sign on as anyone."""
    if settings.MFT_PROXY_FORMAT == "builtin" or settings.MFT_PROXY_SECRET is not None:
        return None
    if not settings.MFT_TRUSTED_PROXIES.any_address:
        return None
    return (
        "MFT_PROXY_SECRET is not set: any local process that can connect to the app from "
        "MFT_TRUSTED_PROXIES can sign on as anyone. Set a secret shared with the front proxy, or "
        "connect the proxy over the app's unix socket (MFT_TRUSTED_PROXIES=unix)."
    )


class ClientCertificateMiddleware:
    """Turn a presented client certificate into a Django session, and end it when it goes.

    Sets ``request.client_certificate`` (a ``proxy.Presented``) on every request. A session
    signed on by certificate ends when a request arrives with no certificate or another
    one, or when the certificate stops authenticating the user; any session ends when the
    user's sign-on mode stops allowing the way it was signed on.
    """

    exempt_prefixes = ("/healthz", "/static/", "/crl/")
    # Decided on every request by what was presented, never by a session (the forward-auth gate).
    sessionless_prefixes = ("/auth/forward",)

    def __init__(self, get_response):
        self.get_response = get_response
        self.proxy_format = settings.MFT_PROXY_FORMAT
        self.header_names = settings.MFT_PROXY_HEADERS

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
        if not request.META.get(proxy.FROM_PROXY_ENVIRON_KEY):
            return proxy.NOTHING  # ProxyGateMiddleware has removed what anyone else sent
        return self.read_headers(request)

    def read_headers(self, request) -> proxy.Presented:
        """Decode the proxy's headers; the same headers again are served from a small cache."""
        names = self.header_names
        values = [request.META.get(meta_name(name)) for name in (names.cert, names.chain, names.verify) if name]
        if self.proxy_format == "apache" or not values[0]:  # numbered chain headers: not worth caching
            return proxy.read_forwarded(self.proxy_format, lambda name: request.META.get(meta_name(name)), names)
        key = hashlib.sha256("\0".join(v or "" for v in values).encode("utf-8", "surrogatepass")).digest()
        with _parsed_lock:
            found = _parsed.get(key)
        if found is None:
            found = proxy.read_forwarded(self.proxy_format, lambda name: request.META.get(meta_name(name)), names)
            if found.proxy_failure is None:  # what the proxy refused is not worth keeping
                with _parsed_lock:
                    _parsed[key] = found
        return found

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
        decision = flows.decide(presented, source_address=client_address(request))
        with flows.one_commit():
            flows.record(decision, automatic=True)
            if decision.ok:
                session.start(request, decision)
        if decision.password_needed_for is not None and session.needs_session(request):
            session.wait_for_password(request, decision)
