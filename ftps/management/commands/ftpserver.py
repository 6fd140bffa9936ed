"""manage.py ftpserver: the FTPS server (explicit FTPS, and implicit FTPS when configured).

Options override the settings for this run. Bad input ends with exit status 2 and one
sentence on stderr; an address that cannot be used (taken, not this machine's) with 1.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from users.management.base import bad_input

from ...addresses import parse_address, parse_ports
from ...server import Config, listen, serve
from ...tls import server_context, server_files


def _shown(address) -> str:
    if address is None:
        return "off"
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Command(BaseCommand):
    help = "Serve FTPS: explicit (AUTH TLS) on MFT_FTPS_BIND, implicit on MFT_FTPS_IMPLICIT_BIND."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--bind", help="Explicit FTPS address, host:port or 'off' (default MFT_FTPS_BIND).")
        parser.add_argument(
            "--implicit-bind", help="Implicit FTPS address, host:port or 'off' (default MFT_FTPS_IMPLICIT_BIND)."
        )
        parser.add_argument(
            "--passive-ports", help="Passive data ports, e.g. 60000-60099 (default MFT_FTPS_PASSIVE_PORTS)."
        )
        parser.add_argument("--check", action="store_true", help="Check the settings and the certificate, then exit.")

    def handle(self, *args, bind=None, implicit_bind=None, passive_ports=None, check=False, **options):
        try:
            explicit = parse_address(bind) if bind is not None else settings.MFT_FTPS_BIND
            implicit = parse_address(implicit_bind) if implicit_bind is not None else settings.MFT_FTPS_IMPLICIT_BIND
            ports = parse_ports(passive_ports) if passive_ports is not None else settings.MFT_FTPS_PASSIVE_PORTS
        except ValueError as exc:
            raise bad_input(str(exc)) from None
        if explicit is None and implicit is None:
            raise bad_input("Both explicit and implicit FTPS are off; give --bind or --implicit-bind.")
        if explicit is not None and explicit == implicit:
            raise bad_input(f"Explicit and implicit FTPS cannot share {_shown(explicit)}.")
        try:
            certfile, keyfile = server_files(settings.MFT_TLS_CERT, settings.MFT_TLS_KEY, settings.MFT_TLS_DIR)
            config = Config(
                explicit=explicit,
                implicit=implicit,
                certfile=certfile,
                keyfile=keyfile,
                passive_ports=tuple(ports),
                masquerade_address=settings.MFT_FTPS_MASQUERADE_ADDRESS,
                max_connections=settings.MFT_FTPS_MAX_CONNECTIONS,
                max_connections_per_address=settings.MFT_FTPS_MAX_CONNECTIONS_PER_ADDRESS,
                idle_seconds=settings.MFT_FTPS_IDLE_SECONDS,
            )
            if check:
                server_context(certfile, keyfile)
                self.stdout.write(f"The FTPS settings and the certificate {certfile} are usable.")
                return
            servers = listen(config)
        except FileNotFoundError as exc:
            raise bad_input(str(exc).strip("'\"")) from None
        except OSError as exc:
            raise CommandError(f"FTPS cannot listen as configured: {exc.strerror or exc}.", returncode=1) from None
        except Exception as exc:  # a certificate or key OpenSSL cannot use
            raise bad_input(f"The server certificate or key cannot be used ({exc}).") from None
        passive = f"{ports[0]}-{ports[-1]}" if ports else "any free port"
        self.stdout.write(
            f"FTPS: explicit (AUTH TLS) on {_shown(explicit)}, implicit on {_shown(implicit)}; "
            f"passive ports {passive}; certificate {certfile}.",
        )
        self.stdout.flush()
        serve(servers)
