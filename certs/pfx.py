"""Opening PKCS#12 files, in a child process with a CPU and memory budget. Pure: no Django.

A PKCS#12 file names its own key-derivation work: iteration counts of up to 2^31 for its MAC
and for each encrypted part, and the app tries more than one password (none, empty) before
any MAC is known to be right, so a crafted file could pin a worker for hours. Capping the
MAC's count before parsing would not be enough: the counts of the encrypted parts inside are
visible only once the outer part is decrypted. So the file is opened by ``cryptography``'s own
``load_pkcs12`` in a child process that the kernel stops after ``CPU_SECONDS`` of work (and
that may not grow past ``MEMORY_BYTES``); this process never parses the file itself.

Run as ``python -m certs.pfx`` it is that child: the request on standard input, the answer
(certificates and, when asked for, the key, as DER) on standard output.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

CPU_SECONDS = 5
MEMORY_BYTES = 1024 * 1024 * 1024
_PROJECT = Path(__file__).resolve().parent.parent


class PFXError(ValueError):
    """The file cannot be opened; the message says why, for a person."""


class WrongPassword(PFXError):
    pass


@dataclass
class Opened:
    certificates: list[x509.Certificate]
    key: object | None  # a private key, when asked for and present
    password: bytes | None  # the password that opened it


def open_pfx(data: bytes, passwords: list[bytes | None], want_key: bool = False) -> Opened:
    """Open a PKCS#12 file with the first of ``passwords`` that fits.

    Raises ``WrongPassword`` when none does (or the file is damaged), ``PFXError`` for a file
    that asks for more work than the budget or an encryption that is not supported.
    """
    request = json.dumps(
        {"passwords": [_b64(p) if p is not None else None for p in passwords], "want_key": want_key}
    ).encode()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "certs.pfx"],
            input=request + b"\n" + data,
            capture_output=True,
            cwd=_PROJECT,
            env={"PYTHONPATH": str(_PROJECT), "PATH": "/usr/bin:/bin"},
            timeout=CPU_SECONDS * 3,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _too_costly() from None
    if done.returncode != 0:
        raise _too_costly()
    answer = json.loads(done.stdout)
    if answer["status"] == "wrong password":
        raise WrongPassword("The password does not open this PKCS#12 file (or the file is damaged).")
    if answer["status"] == "unsupported":
        raise PFXError(f"The PKCS#12 file uses an encryption the app does not support ({answer['detail']}).")
    key = None
    if answer.get("key"):
        key = serialization.load_der_private_key(base64.b64decode(answer["key"]), None)
    certificates = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in answer["certificates"]]
    used = answer["password"]
    return Opened(certificates, key, base64.b64decode(used) if used is not None else None)


def _too_costly() -> PFXError:
    return PFXError(
        f"Opening this PKCS#12 file took more than {CPU_SECONDS} seconds of work, so it was not read: it asks "
        "for an extreme number of key-derivation rounds, or it is not a PKCS#12 file. Export it again with "
        "common settings."
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _child() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    stdin = sys.stdin.buffer.read()
    header, _, data = stdin.partition(b"\n")
    request = json.loads(header)
    for encoded in request["passwords"]:
        password = base64.b64decode(encoded) if encoded is not None else None
        try:
            loaded = pkcs12.load_pkcs12(data, password)
        except ValueError:
            continue
        except UnsupportedAlgorithm as exc:
            _answer({"status": "unsupported", "detail": str(exc).splitlines()[0][:200]})
            return
        certificates = [loaded.cert.certificate] if loaded.cert is not None else []
        certificates += [c.certificate for c in loaded.additional_certs]
        key = None
        if request["want_key"] and loaded.key is not None:
            key = _b64(
                loaded.key.private_bytes(
                    serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        _answer(
            {
                "status": "ok",
                "certificates": [_b64(c.public_bytes(serialization.Encoding.DER)) for c in certificates],
                "key": key,
                "password": encoded,
            }
        )
        return
    _answer({"status": "wrong password"})


def _answer(answer: dict) -> None:
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    _child()
