"""Reading the client certificate a front proxy forwards. Pure: no Django.

Each supported proxy puts the certificate (and sometimes its chain and its own verdict)
into request headers in its own encoding. ``read_forwarded`` turns those headers into
certificates, or raises ``ForwardedCertError`` with a sentence when they are malformed,
oversized, truncated or encoded twice. Whether to honour the headers at all (only from a
configured proxy address) is decided by the caller.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509

from certs.loading import CertificateLoadError, der_length, load_der

FORMATS = ("nginx", "envoy", "traefik", "haproxy", "apache", "rfc9440", "builtin")

# A certificate chain in a header is a few kilobytes; anything far larger is not one.
MAX_HEADER_BYTES = 64 * 1024
MAX_CHAIN = 10


class ForwardedCertError(ValueError):
    """The forwarded certificate headers cannot be read; the message says why."""


@dataclass(frozen=True)
class HeaderNames:
    cert: str
    chain: str | None = None
    verify: str | None = None


DEFAULT_HEADERS = {
    # $ssl_client_escaped_cert and $ssl_client_verify
    "nginx": HeaderNames("X-SSL-Client-Cert", None, "X-SSL-Client-Verify"),
    # x-forwarded-client-cert, Cert= and Chain= of the element the nearest proxy added
    "envoy": HeaderNames("X-Forwarded-Client-Cert"),
    # passTLSClientCert with pem: base64 DER, comma-separated, leaf first
    "traefik": HeaderNames("X-Forwarded-Tls-Client-Cert"),
    # %[ssl_c_der,base64], %[ssl_c_chain_der,base64] and %[ssl_c_verify]
    "haproxy": HeaderNames("X-SSL-Client-Cert", "X-SSL-Client-Chain", "X-SSL-Client-Verify"),
    # %{SSL_CLIENT_CERT}s, %{SSL_CLIENT_CERT_CHAIN_n}s as X-SSL-Client-Chain-n, %{SSL_CLIENT_VERIFY}s
    "apache": HeaderNames("X-SSL-Client-Cert", "X-SSL-Client-Chain", "X-SSL-Client-Verify"),
    # RFC 9440: structured-field byte sequences
    "rfc9440": HeaderNames("Client-Cert", "Client-Cert-Chain"),
}


@dataclass(frozen=True)
class Presented:
    """What arrived: the client certificate, the chain it came with, the proxy's own verdict."""

    cert: x509.Certificate | None
    chain: tuple[x509.Certificate, ...] = ()
    # Set when the proxy says its own verification failed ("FAILED:certificate has expired").
    proxy_failure: str | None = None

    def size(self) -> int:
        """About how many bytes this takes in memory: its certificates' DER, and some overhead."""
        return sum(len(c.tbs_certificate_bytes) + 512 for c in (self.cert, *self.chain) if c is not None) + 256


NOTHING = Presented(None)

# Where the built-in HTTPS server (``signon.tls``) puts the client's certificate and the chain
# it sent, as DER, in the WSGI environ; no client can set these.
TLS_CERT_ENVIRON_KEY = "mft.tls_client_cert"
TLS_CHAIN_ENVIRON_KEY = "mft.tls_client_chain"
# Whether the request came from the front proxy, as ``signon.middleware.ProxyGateMiddleware``
# decided (an environ key no client can set).
FROM_PROXY_ENVIRON_KEY = "mft.from_proxy"

Headers = Callable[[str], "str | None"]


def read_forwarded(proxy_format: str, headers: Headers, names: HeaderNames | None = None) -> Presented:
    """The certificate in the request's headers, as ``proxy_format`` forwards it.

    ``headers(name)`` returns a header's value or None. Returns ``NOTHING`` when no
    certificate was presented.
    """
    if proxy_format not in READERS:
        raise ValueError(f"Unknown proxy format '{proxy_format}'.")
    names = names or DEFAULT_HEADERS[proxy_format]

    def header(name: str | None) -> str | None:
        if name is None:
            return None
        value = headers(name)
        if value is None:
            return None
        if len(value) > MAX_HEADER_BYTES:
            raise ForwardedCertError(
                f"The {name} header is {len(value):,} bytes long; at most {MAX_HEADER_BYTES:,} are accepted."
            )
        return value.strip()

    presented = READERS[proxy_format](header, names)
    if len(presented.chain) > MAX_CHAIN:
        raise ForwardedCertError(f"The forwarded chain has {len(presented.chain)} certificates; at most {MAX_CHAIN}.")
    if presented.cert is None and presented.chain:
        raise ForwardedCertError("The proxy forwarded a chain without a client certificate.")
    return presented


# --- decoding helpers --------------------------------------------------------------------------

_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def _certificate(der: bytes, where: str) -> x509.Certificate:
    try:
        return load_der(der)
    except CertificateLoadError as exc:
        raise ForwardedCertError(f"The {where} does not hold a readable certificate: {exc}") from None


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ForwardedCertError(f"The {where} is not valid base64.") from None


def _pem_certificates(text: str, where: str) -> list[x509.Certificate]:
    """Certificates from PEM text, however the proxy folded its lines (newlines, spaces, tabs)."""
    blocks = _PEM.findall(text)
    if not blocks:
        if "-----BEGIN CERTIFICATE-----" in text:
            raise ForwardedCertError(f"The {where} is truncated: the certificate has no END line.")
        raise ForwardedCertError(f"The {where} is not a PEM certificate.")
    return [_certificate(_b64(block, where), where) for block in blocks]


def _unescape(text: str, where: str) -> str:
    try:
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ForwardedCertError(f"The {where} has a broken URL escape.") from None
    if _PERCENT_ESCAPE.search(decoded):  # PEM and base64 never hold '%': this was escaped twice
        raise ForwardedCertError(f"The {where} is URL-encoded twice.")
    return decoded


def _split_der(data: bytes, where: str) -> list[x509.Certificate]:
    """Concatenated DER certificates, one after another."""
    certs = []
    while data:
        length = der_length(data) if data[:1] == b"\x30" else None
        if length is None or length > len(data):
            raise ForwardedCertError(f"The {where} is truncated.")
        certs.append(_certificate(data[:length], where))
        data = data[length:]
        if len(certs) > MAX_CHAIN:
            break
    return certs


def _absent(value: str | None, *placeholders: str) -> bool:
    return value is None or value == "" or value in placeholders


# --- one reader per proxy ----------------------------------------------------------------------


def _nginx(header, names: HeaderNames) -> Presented:
    value = header(names.cert)
    verify = header(names.verify)
    if _absent(value, "-"):
        return NOTHING
    where = f"{names.cert} header"
    certs = _pem_certificates(_unescape(value, where), where)
    failure = verify if verify and verify.upper().startswith("FAILED") else None
    if verify and verify.upper() == "NONE":
        failure = "the proxy says no certificate was verified"
    return Presented(certs[0], tuple(certs[1:]), failure)


def _envoy(header, names: HeaderNames) -> Presented:
    value = header(names.cert)
    if _absent(value):
        return NOTHING
    elements = _xfcc_elements(value)
    nearest = elements[-1]  # each proxy appends its own element; the last is the one next to us
    where = f"{names.cert} header"
    cert_text, chain_text = nearest.get("cert"), nearest.get("chain")
    if not cert_text and not chain_text:
        return NOTHING
    if cert_text:
        certs = _pem_certificates(_unescape(cert_text, where), where)
        leaf, rest = certs[0], certs[1:]
    else:
        leaf, rest = None, []
    chain = _pem_certificates(_unescape(chain_text, where), where) if chain_text else []
    if leaf is None:
        leaf, chain = chain[0], chain[1:]
    elif chain and chain[0] == leaf:
        chain = chain[1:]  # Envoy's Chain= starts with the client certificate itself
    return Presented(leaf, tuple(rest + chain))


def _xfcc_elements(value: str) -> list[dict[str, str]]:
    """Parse x-forwarded-client-cert: elements split by ',', pairs by ';', values maybe quoted."""
    elements, pairs, key, token, quoted, escaped = [], {}, None, [], False, False

    def finish_pair():
        nonlocal key, token
        text = "".join(token).strip()
        if key is None:
            if text:
                raise ForwardedCertError("The X-Forwarded-Client-Cert header has a field without a name.")
        else:
            pairs[key.strip().lower()] = text
        key, token = None, []

    for char in value:
        if escaped:
            token.append(char)
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            else:
                token.append(char)
        elif char == '"':
            quoted = True
        elif char == "=" and key is None:
            key, token = "".join(token), []
        elif char == ";":
            finish_pair()
        elif char == ",":
            finish_pair()
            elements.append(pairs)
            pairs = {}
        else:
            token.append(char)
    if quoted:
        raise ForwardedCertError("The X-Forwarded-Client-Cert header is truncated (an unclosed quote).")
    finish_pair()
    elements.append(pairs)
    return [element for element in elements if element] or [{}]


def _traefik(header, names: HeaderNames) -> Presented:
    value = header(names.cert)
    if _absent(value):
        return NOTHING
    where = f"{names.cert} header"
    decoded = _unescape(value, where) if "%" in value else value
    if "-----BEGIN" in decoded:
        certs = _pem_certificates(decoded, where)
    else:
        certs = [_certificate(_b64(part, where), where) for part in decoded.split(",") if part.strip()]
    if not certs:
        return NOTHING
    return Presented(certs[0], tuple(certs[1:]))


def _haproxy(header, names: HeaderNames) -> Presented:
    value = header(names.cert)
    if _absent(value):
        return NOTHING
    where = f"{names.cert} header"
    cert = _certificate(_b64(value, where), where)
    chain_value = header(names.chain)
    chain_where = f"{names.chain} header"
    chain = [] if _absent(chain_value) else _split_der(_b64(chain_value, chain_where), chain_where)
    if chain and chain[0] == cert:
        chain = chain[1:]
    verify = header(names.verify)
    failure = None
    if verify not in (None, "", "0"):
        failure = f"the proxy reports verification error {verify}"
    return Presented(cert, tuple(chain), failure)


def _apache(header, names: HeaderNames) -> Presented:
    value = header(names.cert)
    if _absent(value, "(null)"):
        return NOTHING
    where = f"{names.cert} header"
    certs = _pem_certificates(value, where)
    chain = list(certs[1:])
    if names.chain:
        for name in numbered_chain_headers(names.chain):
            item = header(name)
            if _absent(item, "(null)"):
                break
            chain.extend(_pem_certificates(item, f"{name} header"))
    verify = header(names.verify)
    failure = None
    if verify and verify.upper() != "SUCCESS":
        # NONE, FAILED:reason, or GENEROUS (verification failed but was let through)
        failure = f"the proxy's verdict is {verify}"
    return Presented(certs[0], tuple(chain), failure)


def _rfc9440(header, names: HeaderNames) -> Presented:
    value = header(names.cert)
    if _absent(value):
        return NOTHING
    cert = _certificate(_byte_sequence(value, names.cert), f"{names.cert} header")
    chain_value = header(names.chain)
    chain = []
    if not _absent(chain_value):
        for item in chain_value.split(","):
            chain.append(_certificate(_byte_sequence(item, names.chain), f"{names.chain} header"))
    return Presented(cert, tuple(chain))


def _byte_sequence(item: str, name: str) -> bytes:
    item = item.strip().split(";", 1)[0].strip()  # parameters, if any, carry nothing we use
    if len(item) < 2 or item[0] != ":" or item[-1] != ":":
        raise ForwardedCertError(f"The {name} header is not a structured-field byte sequence (:base64:).")
    return _b64(item[1:-1], f"{name} header")


def _builtin(header, names: HeaderNames) -> Presented:  # pragma: no cover - the TLS socket, not headers
    return NOTHING


READERS = {
    "nginx": _nginx,
    "envoy": _envoy,
    "traefik": _traefik,
    "haproxy": _haproxy,
    "apache": _apache,
    "rfc9440": _rfc9440,
    "builtin": _builtin,
}


# --- who may send these headers ----------------------------------------------------------------

UNIX = "unix"
SECRET_HEADER = "X-MFT-Proxy-Secret"


@dataclass(frozen=True)
class TrustedProxies:
    """Where the front proxy connects from: exact addresses or networks, and/or the app's unix
    socket (``unix``: a connection over a socket has no address, so file permissions decide)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    unix: bool = False

    def __contains__(self, address: str | None) -> bool:
        if not address:
            # Only a unix socket gives no address (a TCP peer always has one).
            return self.unix and address == ""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    @property
    def any_address(self) -> bool:
        """Whether anything that can open a TCP connection from a trusted address counts as the proxy."""
        return bool(self.networks)


def parse_proxies(text: str) -> TrustedProxies:
    """'127.0.0.1, 10.0.0.0/24, ::1' or 'unix' (or both); raises ValueError naming a bad entry."""
    networks, unix = [], False
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item.lower() == UNIX:
            unix = True
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"'{item}' is neither an IP address, a network nor 'unix'") from None
    return TrustedProxies(tuple(networks), unix)


def secret_matches(sent: str | None, secret: str) -> bool:
    """The proxy's shared secret, compared in constant time."""
    return sent is not None and hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), secret.encode())


def client_address(remote_addr: str | None, forwarded_for: str | None, from_proxy: bool) -> str | None:
    """The client's address: for a request from the proxy, the address the proxy saw.

    Each shipped proxy appends the address it saw to X-Forwarded-For, so that is the right-most
    entry; anything to its left came from the client and proves nothing.
    """
    if from_proxy and forwarded_for:
        hop = forwarded_for.rsplit(",", 1)[-1].strip()
        try:
            return str(ipaddress.ip_address(hop.split("%", 1)[0]))
        except ValueError:
            pass
    return remote_addr or None


def forwarded_header_names(*extra: HeaderNames) -> tuple[str, ...]:
    """Every header any supported proxy format uses for a client certificate, and the secret.

    From anyone but the proxy, and (except the configured format's own) from the proxy too,
    these are removed before anything reads the request.
    """
    names = {SECRET_HEADER}
    for header_names in (*DEFAULT_HEADERS.values(), *extra):
        names.update(n for n in (header_names.cert, header_names.chain, header_names.verify) if n)
    for chain in {h.chain for h in (DEFAULT_HEADERS["apache"], *extra) if h.chain}:
        names.update(numbered_chain_headers(chain))
    return tuple(sorted(names))


def numbered_chain_headers(chain: str) -> list[str]:
    """Apache forwards the chain one certificate per header: X-SSL-Client-Chain-0, -1, ..."""
    return [f"{chain}-{index}" for index in range(MAX_CHAIN + 1)]
