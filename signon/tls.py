"""The built-in HTTPS server: gunicorn terminating TLS itself and handing the client
certificate to the app (MFT_PROXY_FORMAT=builtin).

Used by ``mft/gunicorn_builtin.py``. It asks for (does not require) a client certificate,
trusts the current trusted root store, and notices a change to the store within a second,
without a restart: gunicorn asks for the TLS context on every connection, and the context
is rebuilt whenever the trust configuration's generation has moved on.
"""

from __future__ import annotations

import _ssl
import datetime as dt
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
    """One TLS server context per worker, rebuilt when the trusted root store changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._context = None
        self._generation = None
        self._checked = 0.0

    def get(self, conf) -> ssl.SSLContext:
        now = time.monotonic()
        if self._context is not None and now - self._checked < CHECK_EVERY_SECONDS:
            return self._context
        with self._lock:
            generation = _trust_generation()
            self._checked = now
            if self._context is None or generation != self._generation:
                self._context = _build_context(conf)
                self._generation = generation
            return self._context


def _trust_generation():
    from certs.models import TrustSettings

    return TrustSettings.get().generation


def _build_context(conf) -> ssl.SSLContext:
    from certs import flows

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=conf.certfile, keyfile=conf.keyfile)
    # Ask for a client certificate without requiring one; verify one that is sent against the
    # trusted root store alone (no system CAs), where any installed certificate is an anchor.
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    bundle, count = flows.export_roots()
    if count:
        context.load_verify_locations(cadata=bundle)
    return context


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
