"""Listening addresses and passive port ranges as written in settings and options. Pure: no Django."""

from __future__ import annotations

OFF = ("", "off", "no", "0", "false")


def parse_address(text: str) -> tuple[str, int] | None:
    """'host:port' or '[v6]:port' as (host, port); 'off' (or nothing) as None.

    Raises ValueError with a sentence for anything else.
    """
    value = (text or "").strip()
    if value.lower() in OFF:
        return None
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"'{value}' has an IPv6 address without brackets; write [::1]:2121.")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"'{value}' is not host:port (such as 127.0.0.1:2121 or [::1]:2121), nor 'off'.")
    return host, int(port)


def parse_ports(text: str) -> list[int]:
    """'60000-60099' or '60000-60009,60100' as sorted ports; nothing as [] (any free port).

    Raises ValueError with a sentence for anything else.
    """
    ports: set[int] = set()
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        first, _, last = item.partition("-")
        if not first.strip().isdigit() or (last and not last.strip().isdigit()):
            raise ValueError(f"'{item}' is neither a port nor a range such as 60000-60099.")
        low, high = int(first), int(last or first)
        if not 1024 <= low <= high < 65536:
            raise ValueError(f"'{item}' must lie within 1024-65535, the lower port first.")
        ports.update(range(low, high + 1))
    return sorted(ports)
