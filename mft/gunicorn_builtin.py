"""gunicorn settings for the built-in HTTPS server (the embedded default that bin/run starts).

gunicorn -c mft/gunicorn_builtin.py mft.wsgi
"""

import os
import ssl
from pathlib import Path

os.environ.setdefault("MFT_PROXY_FORMAT", "builtin")
os.environ.setdefault("MFT_SECURE_COOKIES", "1")

_data = Path(os.environ.get("MFT_DATA_DIR", Path(__file__).resolve().parent.parent / "data"))
_tls = Path(os.environ.get("MFT_TLS_DIR", _data / "tls"))


def _server_files():
    from signon.tls import ensure_server_certificate

    cert, key, _ = ensure_server_certificate(_tls)
    return str(cert), str(key)


certfile = os.environ.get("MFT_TLS_CERT") or None
keyfile = os.environ.get("MFT_TLS_KEY") or None
if not certfile or not keyfile:
    certfile, keyfile = _server_files()

bind = [os.environ.get("MFT_BIND", "127.0.0.1:8443")]
workers = int(os.environ.get("MFT_WORKERS", "2"))
threads = int(os.environ.get("MFT_THREADS", "8"))
worker_class = "signon.tls.ClientCertWorker"
cert_reqs = ssl.CERT_OPTIONAL
accesslog = "-"


def ssl_context(conf, default_ssl_context_factory):
    from signon.tls import ssl_context as build

    return build(conf, default_ssl_context_factory)
