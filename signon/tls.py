"""The built-in HTTPS server: gunicorn terminating TLS itself and handing the client
certificate to the app (MFT_PROXY_FORMAT=builtin).

Used by ``mft/gunicorn_builtin.py``. It asks for (does not require) a client certificate,
trusts the current trusted root store, and notices a change to the store within a second,
without a restart: gunicorn asks for the TLS context on every connection, and the context
is rebuilt whenever the trust configuration's generation has moved on.
"""

from __future__ import annotations

import _ssl
import ctypes
import datetime as dt
import logging
import os
import ssl
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from gunicorn.workers.gthread import ThreadWorker

from certs import issuing

from .proxy import TLS_CERT_ENVIRON_KEY, TLS_CHAIN_ENVIRON_KEY

CHECK_EVERY_SECONDS = 1.0

logger = logging.getLogger(__name__)


def ensure_server_certificate(directory: Path, hostnames=("localhost",), addresses=("127.0.0.1", "::1")):
    """The server certificate and key files, made once (and again when near expiry)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    certfile, keyfile = directory / "server-cert.pem", directory / "server-key.pem"
    if certfile.exists() and keyfile.exists():
        current = x509.load_pem_x509_certificate(certfile.read_bytes())
        if current.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=30):
            return certfile, keyfile, False
    cert, key = issuing.create_server_certificate(list(hostnames), list(addresses))
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return certfile, keyfile, True


class ContextCache:
    """One TLS server context per worker, rebuilt when the trusted root store changes.

    A rebuild that fails (the store cannot be loaded) keeps the last good context, so the
    server stays online; the failure is logged, audited and shown on the administrator's
    dashboard until a rebuild succeeds. With no good context yet, the server starts without
    client certificates (passwords still work) rather than not at all.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._context = None
        self._generation = None
        self._checked = 0.0
        self.failure: str | None = None

    def get(self, conf) -> ssl.SSLContext:
        now = time.monotonic()
        if self._context is not None and now - self._checked < CHECK_EVERY_SECONDS:
            return self._context
        with self._lock:
            generation = _trust_generation()
            self._checked = now
            if self._context is None or generation != self._generation:
                try:
                    self._context = _build_context(conf, with_roots=True)
                    self.failure = None
                except Exception as exc:  # any failure: the server must stay up
                    self._note_failure(exc, generation)
                    if self._context is None:
                        self._context = _build_context(conf, with_roots=False)
                self._generation = generation
            return self._context

    def _note_failure(self, exc: Exception, generation) -> None:
        kept = "keeps the previous trusted root store" if self._context else "accepts no client certificates"
        self.failure = (
            f"The built-in HTTPS server could not load the trusted root store ({exc}); it {kept} "
            "until the store can be loaded. Check the certificates in the trusted root store."
        )
        logger.error("%s", self.failure, exc_info=True)
        _record_failure(self.failure, generation)


def _trust_generation():
    from certs.models import TrustSettings

    return TrustSettings.get().generation


def _record_failure(message: str, generation) -> None:
    from django.core.cache import cache

    from audit.models import AuditEvent

    if cache.add(f"mft:tls-context-failed:{generation}", 1, 3600):  # once per configuration
        AuditEvent.objects.record("built-in HTTPS server", "tls.context_failed", message)


def context_failure() -> str | None:
    """Why this process's built-in server is not using the current trusted root store, if it is not."""
    return _contexts.failure


# A client that has sent no complete request line for this long is dropped: a stalled reader
# would otherwise hold one of the worker's threads for good.
READ_TIMEOUT_SECONDS = 60.0


class GuardedSSLSocket(ssl.SSLSocket):
    """A TLS connection that cannot hold the server up.

    The handshake must finish within ``MFT_TLS_HANDSHAKE_SECONDS`` (a client that sends a few
    bytes of a record and falls silent is dropped), and a blocking read gives up after
    ``READ_TIMEOUT_SECONDS``: gunicorn sets its sockets blocking, without a timeout, before each
    request, so here "blocking" means "blocking with a deadline". A connection that failed its
    handshake or stalled is closed at once: gunicorn would otherwise linger on it, politely
    draining it for seconds on the thread that accepts every other connection.
    """

    def do_handshake(self, block=False):
        from django.conf import settings

        self.settimeout(settings.MFT_TLS_HANDSHAKE_SECONDS)
        try:
            super().do_handshake(block)
        except (OSError, ValueError):
            self.close()
            raise

    def recv(self, buflen=1024, flags=0):
        try:
            return super().recv(buflen, flags)
        except TimeoutError:
            self.close()
            raise

    def recv_into(self, buffer, nbytes=None, flags=0):
        try:
            return super().recv_into(buffer, nbytes, flags)
        except TimeoutError:
            self.close()
            raise

    def setblocking(self, flag):
        if self.fileno() == -1:
            return  # closed above; gunicorn still tidies up after it
        if flag:
            self.settimeout(READ_TIMEOUT_SECONDS)
        else:
            super().setblocking(False)


def _build_context(conf, *, with_roots: bool) -> ssl.SSLContext:
    from certs import flows

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.sslsocket_class = GuardedSSLSocket
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=conf.certfile, keyfile=conf.keyfile)
    # Ask for a client certificate without requiring one; verify one that is sent against the
    # trusted root store alone (no system CAs), where any installed certificate is an anchor.
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if with_roots:
        bundle, count = flows.export_roots()
        if count:
            # The roots' names go to browsers, which offer a certificate that chains to one of them.
            context.load_verify_locations(cadata=bundle)
    judge_in_the_app(context)
    return context


# OpenSSL's verify callback: int (*)(int preverify_ok, X509_STORE_CTX *ctx).
_VERIFY_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


@_VERIFY_CALLBACK
def _let_the_app_judge(preverify_ok, store_context):
    return 1


def judge_in_the_app(context: ssl.SSLContext) -> bool:
    """Let a handshake go on whatever the client's certificate chains to, as a proxy's
    ``optional_no_ca`` mode does: the app judges every certificate itself, refuses one that
    cannot connect (never signing it on) and counts it on the sign-on overview. The client
    still proves it holds the certificate's key; only the chain is left to the app.

    Python's ``ssl`` has no verify callback, so it is set on the context's OpenSSL object,
    found where CPython keeps it and checked against the context's own settings first. When
    that check fails, nothing is changed and certificates that do not chain up to the trusted
    root store are refused at the handshake, as before. Returns whether the callback is set.
    """
    try:
        library = ctypes.CDLL(_ssl.__file__)  # the libssl that Python's ssl uses
        get_mode, get_options, set_verify = (
            library.SSL_CTX_get_verify_mode,
            library.SSL_CTX_get_options,
            library.SSL_CTX_set_verify,
        )
        get_mode.argtypes = get_options.argtypes = [ctypes.c_void_p]
        get_mode.restype, get_options.restype = ctypes.c_int, ctypes.c_uint64
        set_verify.argtypes, set_verify.restype = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CALLBACK], None
        handle = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
        if not handle or get_mode(handle) != 1 or get_options(handle) != context.options:
            raise LookupError("the context's OpenSSL object is not where it was expected")
        set_verify(handle, 1, _let_the_app_judge)  # SSL_VERIFY_PEER: ask, do not require
        return True
    except (OSError, AttributeError, LookupError, ValueError) as exc:
        logger.warning("The built-in server refuses unknown client certificates at the handshake (%s).", exc)
        return False


_contexts = ContextCache()


def ssl_context(conf, default_ssl_context_factory):
    """gunicorn's ssl_context hook: called for every new connection."""
    return _contexts.get(conf)


def peer_certificates(sock) -> tuple[bytes | None, tuple[bytes, ...]]:
    """The client's certificate and the chain it sent, as DER, from a TLS socket."""
    if not isinstance(sock, ssl.SSLSocket):
        return None, ()
    try:
        leaf = sock.getpeercert(binary_form=True)
    except (ValueError, ssl.SSLError):
        return None, ()
    if not leaf:
        return None, ()
    # Public from Python 3.13 (SSLSocket.get_unverified_chain); on the C object before that.
    unverified = getattr(sock, "get_unverified_chain", None) or getattr(
        getattr(sock, "_sslobj", None), "get_unverified_chain", None
    )
    chain = ()
    if unverified is not None:
        try:
            sent = unverified() or []
            chain = tuple(c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in sent)
        except (ValueError, ssl.SSLError, AttributeError):
            chain = ()
    return leaf, tuple(c for c in chain if c != leaf)


class ClientCertWorker(ThreadWorker):
    """gunicorn's threaded worker, passing each connection's client certificate to the app.

    The threaded worker waits for a new connection's first bytes without tying up a thread,
    so idle connections do not starve the server.
    """

    _local = threading.local()

    def handle_request(self, req, conn):
        self._local.certificates = peer_certificates(conn.sock)
        try:
            return super().handle_request(req, conn)
        finally:
            self._local.certificates = (None, ())

    def load_wsgi(self):
        super().load_wsgi()
        application = self.wsgi
        local = self._local

        def with_client_cert(environ, start_response):
            leaf, chain = getattr(local, "certificates", (None, ()))
            environ[TLS_CERT_ENVIRON_KEY] = leaf
            environ[TLS_CHAIN_ENVIRON_KEY] = chain
            return application(environ, start_response)

        self.wsgi = with_client_cert
