"""gunicorn settings for running behind a front proxy (the configurations in deploy/).

gunicorn -c mft/gunicorn_proxy.py mft.wsgi

By default the app listens on a unix socket in the data folder (MFT_BIND=unix:PATH), which the
proxy connects to and which nothing else can open: the socket file is the owner's and group's
only (put the proxy's user in that group), and the app trusts it with MFT_TRUSTED_PROXIES=unix.
Listening on TCP (MFT_BIND=HOST:PORT, e.g. a proxy in another container) needs
MFT_PROXY_SECRET, shared with the proxy, so that a local process cannot pose as the proxy.
"""

import os
from pathlib import Path

_data = Path(os.environ.get("MFT_DATA_DIR", Path(__file__).resolve().parent.parent / "data"))

bind = [os.environ.get("MFT_BIND") or f"unix:{_data / 'app.sock'}"]
workers = int(os.environ.get("MFT_WORKERS", "2"))
threads = int(os.environ.get("MFT_THREADS", "8"))
worker_class = "gthread"
# The socket file is closed to other users (rwx for its owner and group only).
umask = 0o007
# A forwarded client certificate with its chain may take up to the app's own 64 KB limit per
# header (post-quantum certificates are several kilobytes each); gunicorn's default of 8,190
# bytes would refuse them with a bare 431.
limit_request_field_size = 100 * 1024
accesslog = "-"
