"""The shipped proxy configurations: each removes what a client sent under every format's
certificate headers, sends the shared secret, and reaches the app over its socket where the
proxy can."""

import re
from pathlib import Path

import pytest

from signon.proxy import SECRET_HEADER, forwarded_header_names

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
CONFIGS = {
    "nginx": ["nginx/mft.conf", "nginx/mft-proxy-headers.conf"],
    "nginx-optional-no-ca": ["nginx/mft-optional-no-ca.conf", "nginx/mft-proxy-headers.conf"],
    "envoy": ["envoy/envoy.yaml"],
    "traefik": ["traefik/dynamic.yml"],
    "haproxy": ["haproxy/haproxy.cfg"],
    "apache": ["apache/mft.conf"],
    "nginx-forward-auth": ["nginx/forward-auth.conf", "nginx/mft-proxy-headers.conf"],
    "envoy-forward-auth": ["envoy/forward-auth.yaml"],
    "traefik-forward-auth": ["traefik/forward-auth.yml"],
}
# These send the gate only the headers they list, so no client header reaches it otherwise.
WHITELISTING = {"envoy-forward-auth": "allowed_headers", "traefik-forward-auth": "authrequestheaders"}


def text(name: str) -> str:
    return "\n".join((DEPLOY / path).read_text() for path in CONFIGS[name]).lower()


def handled(config: str, header: str) -> bool:
    """The header is removed from the client's request or set by the proxy itself."""
    header = header.lower()
    if header.startswith("x-ssl-client-chain-") and "x-ssl-client-chain-[0-9]+" in config:
        return True  # HAProxy removes the numbered ones by a pattern
    return bool(re.search(rf"(^|[\s\"'\[])({re.escape(header)})([\s\"':,]|$)", config, re.M))


@pytest.mark.parametrize("name", CONFIGS)
def test_every_format_s_certificate_headers_are_removed_or_set(name):
    config = text(name)
    if name in WHITELISTING:
        assert WHITELISTING[name] in config
        return
    missing = [h for h in forwarded_header_names() if not handled(config, h)]
    assert not missing, f"{name} passes a client's {', '.join(missing)} on"


@pytest.mark.parametrize("name", CONFIGS)
def test_the_shared_secret_is_sent(name):
    config = text(name)
    assert SECRET_HEADER.lower() in config
    assert "mft_proxy_secret" in config


@pytest.mark.parametrize("name", [n for n in CONFIGS if not n.startswith("traefik")])
def test_the_app_is_reached_over_its_unix_socket(name):
    assert "/run/mft/app.sock" in text(name)
    assert "mft_trusted_proxies=unix" in text(name)
