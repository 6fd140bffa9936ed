"""Running the FTPS server: explicit FTPS (AUTH TLS) and, when configured, implicit FTPS, in one
process with a thread per connection.

A thread per connection (pyftpdlib's threaded server): sign-on and recording transfers wait
on the database, and in a single-threaded loop every other client would wait with them.
Each thread has its own database connection, closed when the connection ends.
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass

from django.db import connections
from pyftpdlib.servers import ThreadedFTPServer

from .handler import ImplicitSignOnHandler, SignOnHandler
from .tls import server_context

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    explicit: tuple[str, int] | None
    implicit: tuple[str, int] | None
    certfile: str
    keyfile: str
    passive_ports: tuple[int, ...] = ()
    masquerade_address: str | None = None
    max_connections: int = 200
    max_connections_per_address: int = 20
    idle_seconds: int = 300


class FTPSServer(ThreadedFTPServer):
    def _loop(self, handler):
        try:
            super()._loop(handler)
        finally:
            connections.close_all()


def handler_classes(config: Config):
    """The two handlers, with the TLS context and the settings of this server."""
    attributes = {
        "ssl_context": server_context(config.certfile, config.keyfile),
        "passive_ports": list(config.passive_ports) or None,
        "masquerade_address": config.masquerade_address,
        "timeout": config.idle_seconds,
    }
    explicit = type("ExplicitHandler", (SignOnHandler,), attributes)
    implicit = type("ImplicitHandler", (ImplicitSignOnHandler,), attributes)
    return explicit, implicit


def listen(config: Config) -> list[FTPSServer]:
    """Bind the listening sockets (raises OSError when an address cannot be used)."""
    explicit_handler, implicit_handler = handler_classes(config)
    servers = []
    for address, handler in ((config.explicit, explicit_handler), (config.implicit, implicit_handler)):
        if address is None:
            continue
        server = FTPSServer(address, handler)
        server.max_cons = config.max_connections
        server.max_cons_per_ip = config.max_connections_per_address
        servers.append(server)
    return servers


def serve(servers: list[FTPSServer]) -> None:
    """Serve until SIGTERM or SIGINT, then close every connection."""

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        # The servers share one loop for accepting; each connection then runs in its thread.
        servers[0].serve_forever(timeout=1.0, handle_exit=False)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for server in servers:
            server.close_all()
        sys.stdout.flush()
