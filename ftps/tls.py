"""The FTPS server's TLS: the built-in servers' certificate, and a context that asks every client
for a certificate without judging it (the trust engine judges it once the handshake is done).

Asking without requiring: a user whose FTP policy is "password" signs on without one, and a
certificate is judged by the same engine and rules as over HTTPS, not by OpenSSL's idea of
the trusted roots. TLS 1.2 and newer with forward-secret AEAD ciphers only; no compression,
no renegotiation. A session id context lets clients resume the control connection's TLS
session on their data connections (curl does; without it OpenSSL refuses the resumption).
"""

from __future__ import annotations

from pathlib import Path

from OpenSSL import SSL

from signon.tls import ensure_server_certificate

TLS12_CIPHERS = b"ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"


def server_files(cert: str, key: str, tls_dir: Path) -> tuple[str, str]:
    """The server certificate and key: the ones configured, or the generated pair the built-in
    HTTPS server uses (made on first use)."""
    if cert and key:
        for name, path in (("MFT_TLS_CERT", cert), ("MFT_TLS_KEY", key)):
            if not Path(path).is_file():
                raise FileNotFoundError(f"{name} names {path}, which is not a file.")
        return cert, key
    certfile, keyfile, _ = ensure_server_certificate(Path(tls_dir))
    return str(certfile), str(keyfile)


def _ask_for_a_certificate(connection, certificate, error, depth, ok) -> bool:
    return True  # accept it for now: the trust engine decides right after the handshake


def server_context(certfile: str, keyfile: str) -> SSL.Context:
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(
        SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_SINGLE_ECDH_USE
    )
    context.set_cipher_list(TLS12_CIPHERS)
    context.use_certificate_chain_file(certfile)
    context.use_privatekey_file(keyfile)
    context.check_privatekey()
    context.set_verify(SSL.VERIFY_PEER, _ask_for_a_certificate)
    context.set_session_id(b"mft-ftps")
    return context
