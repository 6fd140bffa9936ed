"""Revocation by OCSP: against a real responder (``openssl ocsp``) started by the tests, and
against answers built on the spot for the attacks a responder cannot be made to send.

Every decision goes through the store and the engine as sign-on reaches them: the root
installed, the org policy set, ``verdicts.judge``. A certificate names its responder in its
authority information access extension; each responder here listens on a port of its own.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import random
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID
from django.core.cache import cache

from certs import crls, flows, ocsp, ocsp_client, verdicts
from certs.models import OcspResponse, Store
from tests.e2e import free_port, require
from tests.pki import DAY, NOW, Issued, crl_der, make_client, make_crl, make_intermediate, make_root

ACTOR = "test suite"


def aia(port: int) -> list:
    url = f"http://127.0.0.1:{port}/"
    description = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url))
    return [(x509.AuthorityInformationAccess([description]), False)]


def client_for(ca: Issued, port: int, cn: str = "Olga") -> Issued:
    return make_client(cn, ca, extensions=aia(port))


def responder_cert(
    ca: Issued, cn: str = "OCSP Responder", eku=(ExtendedKeyUsageOID.OCSP_SIGNING,), nocheck: bool = False
) -> Issued:
    """A delegated responder certificate; ``nocheck`` adds id-pkix-ocsp-nocheck (its own status is
    then not checked, as the usual short-lived responder certificates have it)."""
    return make_client(cn, ca, eku=list(eku), extensions=[(x509.OCSPNoCheck(), False)] if nocheck else None)


def index_serial(cert: x509.Certificate) -> str:
    text = format(cert.serial_number, "X")
    return text if len(text) % 2 == 0 else "0" + text


def index_line(cert: x509.Certificate, revoked: dt.datetime | None = None, reason: str = "") -> str:
    expiry = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    subject = "/" + "/".join(f"CN={a.value}" for a in cert.subject)
    if revoked is None:
        return f"V\t{expiry}\t\t{index_serial(cert)}\tunknown\t{subject}\n"
    when = revoked.strftime("%y%m%d%H%M%SZ") + (f",{reason}" if reason else "")
    return f"R\t{expiry}\t{when}\t{index_serial(cert)}\tunknown\t{subject}\n"


@dataclass
class Responder:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture
def responders(tmp_path):
    """Start ``openssl ocsp`` responders; each is stopped at the end of the test."""
    openssl = require("OpenSSL", shutil.which("openssl"), "apt-get install openssl")
    started: list[Responder] = []

    def start(ca: Issued, signer: Issued, lines: list[str], port: int, *extra: str) -> Responder:
        folder = tmp_path / f"responder-{port}-{len(started)}"
        folder.mkdir()
        (folder / "index.txt").write_text("".join(lines))
        (folder / "ca.pem").write_bytes(ca.pem)
        (folder / "signer.pem").write_bytes(signer.pem)
        (folder / "signer.key").write_bytes(signer.key_pem)
        command = [openssl, "ocsp", "-index", "index.txt", "-port", str(port), "-CA", "ca.pem"]
        command += ["-rsigner", "signer.pem", "-rkey", "signer.key", *(extra or ("-ndays", "1"))]
        log = (folder / "log.txt").open("wb")
        process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        responder = Responder(port, process)
        started.append(responder)
        # Ready once it says so (a probing connection would hold the one-at-a-time responder).
        deadline = time.monotonic() + 10
        while b"waiting for OCSP client connections" not in (folder / "log.txt").read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"openssl ocsp did not start: {(folder / 'log.txt').read_text()}")
            time.sleep(0.05)
        return responder

    yield start
    for responder in started:
        responder.process.terminate()
        responder.process.wait(timeout=10)


@pytest.fixture
def ca(db, settings):
    settings.MFT_OCSP_TIMEOUT = 1
    root = make_root("OCSP Test Root")
    flows.add_to_store(Store.ROOT, [root.cert], ACTOR)
    return root


def by_ocsp(when_unknown="refuse", check="ocsp"):
    crls.set_policy(ACTOR, check=check, when_unknown=when_unknown)
    verdicts.clear_caches()


def judge(cert: Issued, chain=(), at=None):
    verdicts.clear_caches()
    return verdicts.judge(cert.cert, [c.cert for c in chain], at=at).connection


def leaf_status(connection):
    return connection.revocation[0]


# --- against a real responder ----------------------------------------------------------------


def test_good_answer_connects_and_names_its_responder(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    responder = responders(ca, ca, [index_line(olga.cert)], port)
    by_ocsp()
    connection = judge(olga)
    assert connection.ok, connection.reason
    status = leaf_status(connection)
    assert status.status == "good"
    assert responder.url in status.source
    assert "this update" in status.source and "next update" in status.source
    shown = verdicts.verdict_as_dict(verdicts.judge(olga.cert))["connect"]["revocation"]
    assert shown[0]["status"] == "good"
    assert responder.url in shown[0]["source"]
    assert shown[0]["next_update"] is not None
    # The root is trusted as installed: not checked.
    assert shown[-1]["status"] == "not_checked"


def test_revoked_answer_refuses_with_when_why_and_where(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    revoked_at = NOW - DAY
    responder = responders(ca, ca, [index_line(olga.cert, revoked_at, "keyCompromise")], port)
    by_ocsp(when_unknown="allow")  # revoked is refused whatever the policy says about unknown
    connection = judge(olga)
    assert not connection.ok
    assert connection.failed_depth == 0
    assert leaf_status(connection).status == "revoked"
    reason = connection.reason
    assert "'Olga'" in reason
    assert f"revoked on {revoked_at:%Y-%m-%d %H:%M} UTC" in reason
    assert "key compromise" in reason
    assert responder.url in reason
    assert "this update" in reason and "next update" in reason


def test_serial_the_responder_does_not_know_is_unknown(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    someone_else = client_for(ca, port, "Someone Else")
    responders(ca, ca, [index_line(someone_else.cert)], port)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert leaf_status(connection).status == "unknown"
    assert "does not know the certificate" in connection.reason
    assert "refuses certificates whose status is unknown" in connection.reason
    by_ocsp(when_unknown="allow")
    assert judge(olga).ok


@pytest.mark.django_db
def test_unreachable_responder_refuses_or_allows_as_the_policy_says(ca):
    port = free_port()  # nothing listens there
    olga = client_for(ca, port)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert leaf_status(connection).status == "unknown"
    assert f"the OCSP responder http://127.0.0.1:{port}/ could not be reached" in connection.reason
    assert "refuses certificates whose status is unknown" in connection.reason
    by_ocsp(when_unknown="allow")
    connection = judge(olga)
    assert connection.ok, connection.reason
    assert leaf_status(connection).status == "unknown"
    assert not OcspResponse.objects.exists()


@pytest.mark.django_db
def test_a_responder_that_never_answers_does_not_hold_sign_on(ca):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)  # connections are queued, never answered
        olga = client_for(ca, silent.getsockname()[1])
        by_ocsp()
        started = time.monotonic()
        connection = judge(olga)
        elapsed = time.monotonic() - started
    assert not connection.ok
    assert "did not answer within 1 seconds" in connection.reason
    assert elapsed < 2.5


def test_answer_signed_by_an_unrelated_key_is_refused(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    stranger_root = make_root("Somebody Else's Root")
    stranger = responder_cert(stranger_root, "Stranger Responder")
    responders(ca, stranger, [index_line(olga.cert)], port)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert leaf_status(connection).status == "unknown"
    assert "'Stranger Responder'" in connection.reason
    assert "did not sign" in connection.reason


def test_answer_signed_by_a_same_name_impostor_of_the_issuer_is_refused(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    impostor = make_root("OCSP Test Root")  # the issuer's name, another key
    responders(ca, impostor, [index_line(olga.cert)], port)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert leaf_status(connection).status == "unknown"
    assert "which the certificate's issuer 'OCSP Test Root' did not sign" in connection.reason


def test_stale_answer_counts_for_nothing(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    responders(ca, ca, [index_line(olga.cert)], port, "-nmin", "1")
    by_ocsp()
    assert judge(olga).ok
    # Ten minutes on, the stored answer is stale, and so is every answer this responder gives.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    connection = judge(olga, at=later)
    assert not connection.ok
    assert "stale" in connection.reason
    assert leaf_status(connection).status == "unknown"


def test_answer_signed_with_sha1_is_refused(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    responders(ca, ca, [index_line(olga.cert)], port, "-ndays", "1", "-rmd", "sha1")
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert "signed its answer with SHA1, which is too weak to trust" in connection.reason


def test_delegated_responder_with_ocsp_signing_is_accepted(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    delegate = responder_cert(ca, nocheck=True)
    responders(ca, delegate, [index_line(olga.cert, NOW - DAY, "superseded")], port)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert leaf_status(connection).status == "revoked"
    assert "superseded" in connection.reason


def store_crl(ca: Issued, revoked=()) -> None:
    outcome, refused = crls.add_crl_file(crl_der(make_crl(ca, list(revoked))), ACTOR)
    assert not refused, refused


def test_delegated_responder_with_nocheck_is_trusted_without_a_crl(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    delegate = responder_cert(ca, nocheck=True)
    responders(ca, delegate, [index_line(olga.cert)], port)
    by_ocsp()
    connection = judge(olga)  # no CRL of the CA is stored, and none is needed
    assert connection.ok, connection.reason
    assert leaf_status(connection).status == "good"


def test_delegated_responder_revoked_on_the_cas_crl_is_not_trusted(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    delegate = responder_cert(ca, "Fallen Responder")
    store_crl(ca, [(delegate.cert, x509.ReasonFlags.key_compromise)])
    responder = responders(ca, delegate, [index_line(olga.cert)], port)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    status = leaf_status(connection)
    assert status.status == "unknown"
    reason = connection.reason
    assert f"the OCSP responder {responder.url} answered good, but the OCSP responder's certificate " in reason
    assert "'Fallen Responder'" in reason
    assert f"was revoked on {NOW - DAY:%Y-%m-%d %H:%M} UTC (reason: key compromise)" in reason
    assert "so its answer cannot be trusted" in reason
    assert "refuses certificates whose status is unknown" in reason
    # Unknown is unknown: a policy that allows it lets her in, and says so.
    by_ocsp(when_unknown="allow")
    connection = judge(olga)
    assert connection.ok
    assert leaf_status(connection).status == "unknown"
    # Its answers are not stored: a stored one would keep the responder from being asked again
    # until the next update it chose.
    assert OcspResponse.objects.count() == 0


def test_a_stored_answer_of_a_responder_to_be_checked_is_dropped_and_the_responder_asked(ca, responders):
    """An answer stored before delegated responders were checked (or planted by whoever holds a
    revoked responder's key, with a next update far ahead) does not pin the status: it is
    dropped, and the responder the CA uses now is asked."""
    port = free_port()
    olga = client_for(ca, port)
    fallen = responder_cert(ca, "Fallen Responder")
    store_crl(ca, [(fallen.cert, x509.ReasonFlags.key_compromise)])
    old = responders(ca, fallen, [index_line(olga.cert)], port)
    der = answer_from(old, ca, olga)
    answer = ocsp.judge(der, olga.cert, ca.cert, NOW, old.url)
    ocsp_client.keep(ocsp.cert_id_key(olga.cert, ca.cert), old.url, der, answer)
    old.process.terminate()
    old.process.wait(timeout=10)
    assert OcspResponse.objects.count() == 1
    new = responder_cert(ca, "New Responder", nocheck=True)
    responders(ca, new, [index_line(olga.cert)], port)
    by_ocsp()
    connection = judge(olga)
    assert connection.ok, connection.reason
    assert leaf_status(connection).status == "good"
    # The fallen responder's answer is gone; the new one's (it carries nocheck) is kept.
    stored = OcspResponse.objects.get()
    kept = ocsp.judge(bytes(stored.der), olga.cert, ca.cert, NOW, stored.responder)
    assert kept.delegate == new.cert


def test_a_revoked_delegated_responder_saying_revoked_counts_for_nothing(ca, responders):
    # A revoked responder's answer counts for nothing, whatever it says; the policy decides.
    port = free_port()
    olga = client_for(ca, port)
    delegate = responder_cert(ca, "Fallen Responder")
    store_crl(ca, [(delegate.cert, x509.ReasonFlags.key_compromise)])
    responders(ca, delegate, [index_line(olga.cert, NOW - DAY, "superseded")], port)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert leaf_status(connection).status == "unknown"
    assert "answered revoked, but the OCSP responder's certificate" in connection.reason


def test_delegated_responder_not_on_the_cas_crl_is_trusted(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    delegate = responder_cert(ca)
    someone = client_for(ca, port, "Someone Else")
    store_crl(ca, [(someone.cert, x509.ReasonFlags.key_compromise)])
    responders(ca, delegate, [index_line(olga.cert)], port)
    by_ocsp()
    connection = judge(olga)
    assert connection.ok, connection.reason
    assert leaf_status(connection).status == "good"
    assert OcspResponse.objects.count() == 0  # asked again at the next decision, checked again


def test_delegated_responder_without_nocheck_or_crl_is_unknown(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    delegate = responder_cert(ca)
    responder = responders(ca, delegate, [index_line(olga.cert)], port)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert leaf_status(connection).status == "unknown"
    reason = connection.reason
    assert f"the OCSP responder {responder.url} answered good, but the responder's certificate" in reason
    assert "has no id-pkix-ocsp-nocheck" in reason
    assert "no CRL from 'OCSP Test Root' is stored" in reason


def test_crl_then_ocsp_a_stale_crl_vouches_for_neither_certificate_nor_responder(ca, responders):
    # The CA's CRL is stale, so it cannot tell about Olga: OCSP is asked, and the same stale CRL
    # cannot vouch for the responder either.
    port = free_port()
    olga = client_for(ca, port)
    delegate = responder_cert(ca)
    stale = make_crl(ca, this_update=NOW - 10 * DAY, next_update=NOW - 3 * DAY)
    assert not crls.add_crl_file(crl_der(stale), ACTOR)[1]
    responders(ca, delegate, [index_line(olga.cert)], port)
    by_ocsp(check="crl+ocsp")
    connection = judge(olga)
    assert not connection.ok
    assert "is stale" in connection.reason
    assert "has no id-pkix-ocsp-nocheck" in connection.reason


def test_delegated_responder_without_ocsp_signing_is_refused(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    delegate = responder_cert(ca, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    responders(ca, delegate, [index_line(olga.cert)], port)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert leaf_status(connection).status == "unknown"
    assert "id-kp-OCSPSigning" in connection.reason


def test_answers_are_kept_until_their_next_update(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    responder = responders(ca, ca, [index_line(olga.cert)], port)
    by_ocsp()
    assert judge(olga).ok
    row = OcspResponse.objects.get()
    assert row.status == "good" and row.responder == responder.url
    assert row.next_update > dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
    responder.process.terminate()
    responder.process.wait(timeout=10)
    # The responder is gone: the stored answer decides (every instance reads the same table).
    connection = judge(olga)
    assert connection.ok, connection.reason
    # Past its next update the stored answer no longer counts, and the responder cannot be reached.
    connection = judge(olga, at=row.next_update + dt.timedelta(hours=1))
    assert not connection.ok
    assert "could not be reached" in connection.reason


def test_intermediate_on_the_path_is_checked_too(ca, responders):
    port = free_port()
    intermediate = make_intermediate("OCSP Test Intermediate", ca, extensions=aia(port))
    olga = client_for(intermediate, free_port())
    responders(ca, ca, [index_line(intermediate.cert, NOW - DAY, "cACompromise")], port)
    by_ocsp(when_unknown="allow")
    connection = judge(olga, chain=[intermediate])
    assert not connection.ok
    assert connection.failed_depth == 1
    assert [s.status for s in connection.revocation] == ["unknown", "revoked", "not_checked"]
    assert "CA compromise" in connection.reason


def test_crl_then_ocsp_asks_the_responder_when_no_crl_can_tell(ca, responders):
    port = free_port()
    olga = client_for(ca, port)
    responder = responders(ca, ca, [index_line(olga.cert, NOW - DAY, "keyCompromise")], port)
    by_ocsp(check="crl+ocsp")
    connection = judge(olga)
    assert not connection.ok
    assert leaf_status(connection).status == "revoked"
    assert responder.url in leaf_status(connection).source


@pytest.mark.django_db
def test_crl_then_ocsp_unknown_says_both_whys(ca):
    olga = client_for(ca, free_port())
    by_ocsp(check="crl+ocsp")
    connection = judge(olga)
    assert not connection.ok
    assert "no CRL from 'OCSP Test Root' is stored" in connection.reason
    assert "could not be reached" in connection.reason


@pytest.mark.django_db
def test_a_certificate_without_a_responder_is_unknown(ca):
    olga = make_client("Olga", ca)
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert "names no OCSP responder" in connection.reason


@pytest.mark.django_db
def test_policy_command_accepts_ocsp(ca):
    from django.core.management import call_command

    call_command("certs", "revocation", "set", "--check", "crl+ocsp", "--when-unknown", "allow", stdout=io.StringIO())
    out = io.StringIO()
    call_command("certs", "revocation", "show", "--json", stdout=out)
    assert json.loads(out.getvalue())["default"]["check"] == "crl+ocsp"
    out = io.StringIO()
    call_command("certs", "revocation", "set", "--check", "ocsp", stdout=out)
    assert "checked by OCSP" in out.getvalue()


# --- answers built on the spot ---------------------------------------------------------------

URL = "http://ocsp.example/"
DER = Encoding.DER


@dataclass(frozen=True)
class Pair:
    issuer: Issued
    cert: Issued


@pytest.fixture(scope="module")
def pair() -> Pair:
    issuer = make_root("Built Answers Root")
    return Pair(issuer, make_client("Bob", issuer))


def build(
    pair: Pair,
    *,
    signer: Issued | None = None,
    about: Issued | None = None,
    status=x509_ocsp.OCSPCertStatus.GOOD,
    this_update=None,
    next_update="default",
    certificates=(),
    nonce: bytes | None = None,
    digest=None,
    by_key: bool = True,
) -> bytes:
    signer = signer or pair.issuer
    this_update = this_update or NOW - dt.timedelta(minutes=1)
    if next_update == "default":
        next_update = this_update + DAY
    revoked = status == x509_ocsp.OCSPCertStatus.REVOKED
    builder = x509_ocsp.OCSPResponseBuilder().add_response(
        cert=(about or pair.cert).cert,
        issuer=pair.issuer.cert,
        algorithm=hashes.SHA1(),  # noqa: S303 - the certificate ID's usual hash
        cert_status=status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=NOW - DAY if revoked else None,
        revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
    )
    encoding = x509_ocsp.OCSPResponderEncoding.HASH if by_key else x509_ocsp.OCSPResponderEncoding.NAME
    builder = builder.responder_id(encoding, signer.cert)
    if certificates:
        builder = builder.certificates([c.cert for c in certificates])
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(signer.key, digest or hashes.SHA256()).public_bytes(DER)


def judged(pair: Pair, der: bytes, at=None, nonce=None) -> ocsp.Answer:
    return ocsp.judge(der, pair.cert.cert, pair.issuer.cert, at or NOW, URL, nonce)


def test_built_good_answer_from_the_issuer(pair):
    answer = judged(pair, build(pair, by_key=False))
    assert answer.status == "good" and answer.cacheable
    assert judged(pair, build(pair)).status == "good"


def test_built_revoked_answer(pair):
    answer = judged(pair, build(pair, status=x509_ocsp.OCSPCertStatus.REVOKED))
    assert answer.status == "revoked"
    assert answer.reason == "keyCompromise"
    assert answer.revoked_at == NOW - DAY


def test_answer_about_another_certificate_is_refused(pair):
    other = make_client("Bob", pair.issuer)  # same issuer, same name, another serial
    answer = judged(pair, build(pair, about=other))
    assert answer.status == "unknown"
    assert "about another certificate" in answer.why


def test_answer_from_the_future_is_refused(pair):
    answer = judged(pair, build(pair, this_update=NOW + dt.timedelta(hours=1)))
    assert answer.status == "unknown" and "not valid yet" in answer.why
    # A responder's clock a little ahead is tolerated.
    assert judged(pair, build(pair, this_update=NOW + dt.timedelta(minutes=2))).status == "good"


def test_stale_built_answer_is_refused(pair):
    answer = judged(pair, build(pair, this_update=NOW - 2 * DAY, next_update=NOW - DAY))
    assert answer.status == "unknown"
    assert f"next update was due {NOW - DAY:%Y-%m-%d %H:%M} UTC" in answer.why
    assert not answer.cacheable
    # No allowance past nextUpdate: a minute late is stale.
    late = build(pair, this_update=NOW - DAY, next_update=NOW - dt.timedelta(minutes=1))
    assert judged(pair, late).status == "unknown"


def test_answer_without_next_update_counts_only_briefly(pair):
    assert judged(pair, build(pair, next_update=None)).status == "good"
    old = build(pair, this_update=NOW - dt.timedelta(hours=1), next_update=None)
    assert "stale" in judged(pair, old).why


def test_nonce_must_be_the_one_sent_when_echoed(pair):
    assert judged(pair, build(pair, nonce=b"n" * 16), nonce=b"n" * 16).status == "good"
    assert judged(pair, build(pair), nonce=b"n" * 16).status == "good"  # leaving it out is allowed
    answer = judged(pair, build(pair, nonce=b"x" * 16), nonce=b"n" * 16)
    assert answer.status == "unknown" and "nonce" in answer.why


def test_forged_answer_naming_the_issuer_is_refused(pair):
    # The responder ID names the issuer; a key of the same name signed, its certificate not sent.
    forged = build(pair, signer=make_root("Built Answers Root"), by_key=False)
    answer = judged(pair, forged)
    assert answer.status == "unknown" and "does not verify" in answer.why


def test_delegated_responder_rules(pair):
    good = responder_cert(pair.issuer)
    answer = judged(pair, build(pair, signer=good, certificates=[good]))
    assert answer.status == "good"
    assert answer.delegate == good.cert and ocsp.needs_status_check(good.cert)
    assert not ocsp.needs_status_check(responder_cert(pair.issuer, nocheck=True).cert)
    assert judged(pair, build(pair)).delegate is None  # the issuer's own key
    # Not sent with the answer: nothing verifies it.
    assert judged(pair, build(pair, signer=good)).status == "unknown"
    no_eku = responder_cert(pair.issuer, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    assert "id-kp-OCSPSigning" in judged(pair, build(pair, signer=no_eku, certificates=[no_eku])).why
    no_signing = make_client(
        "Responder",
        pair.issuer,
        eku=[ExtendedKeyUsageOID.OCSP_SIGNING],
        key_usage={"digital_signature": False, "key_agreement": True},
    )
    assert "without digitalSignature" in judged(pair, build(pair, signer=no_signing, certificates=[no_signing])).why
    elsewhere = responder_cert(make_root("Built Answers Root"))  # issuer's name, another key
    assert "did not sign" in judged(pair, build(pair, signer=elsewhere, certificates=[elsewhere])).why
    expired = make_client(
        "Old Responder",
        pair.issuer,
        eku=[ExtendedKeyUsageOID.OCSP_SIGNING],
        not_before=NOW - 3 * DAY,
        not_after=NOW - DAY,
    )
    assert "not valid now" in judged(pair, build(pair, signer=expired, certificates=[expired])).why
    # A responder certificate of another CA cannot answer for this one even with the EKU.
    other_ca = make_intermediate("Another CA", pair.issuer)
    theirs = responder_cert(other_ca)
    assert "did not sign" in judged(pair, build(pair, signer=theirs, certificates=[theirs])).why


def test_unsuccessful_and_garbage_answers(pair):
    try_later = x509_ocsp.OCSPResponseBuilder.build_unsuccessful(x509_ocsp.OCSPResponseStatus.TRY_LATER)
    answer = judged(pair, try_later.public_bytes(DER))
    assert answer.status == "unknown" and "try later" in answer.why
    assert "not an OCSP response" in judged(pair, b"<html>hello</html>").why


class _Flood(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - the handler's name
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"x" * (ocsp_client.MAX_RESPONSE_BYTES + 10))

    def log_message(self, *args):
        pass


def test_fetch_refuses_other_schemes_and_oversized_answers():
    deadline = time.monotonic() + 2
    with pytest.raises(ocsp_client.FetchError, match="address the app cannot use"):
        ocsp_client.fetch("ldap://ocsp.example/", b"", deadline)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Flood)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        with pytest.raises(ocsp_client.FetchError, match="sent more than 256 KiB"):
            ocsp_client.fetch(f"http://127.0.0.1:{server.server_address[1]}/", b"request", deadline)
    finally:
        thread.join(5)
        server.server_close()


# --- RSA-PSS -----------------------------------------------------------------------------------


class _Fixed(http.server.BaseHTTPRequestHandler):
    """Answers every OCSP request with the same bytes (a tampered answer, for one)."""

    body = b""
    asked = 0

    def do_POST(self):  # noqa: N802 - the handler's name
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).asked += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fixed_answers():
    """HTTP servers on ports of their own that answer with the bytes their handler holds (set
    ``handler.body``); each counts the requests it answered. Stopped at the end."""
    servers = []

    def serve(body: bytes = b"") -> tuple[int, type]:
        handler = type("Fixed", (_Fixed,), {"body": body, "asked": 0})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1], handler

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def rsa_ca(db, settings, rsa_key):
    """A root with an RSA key (RSA-PSS needs one), installed."""
    settings.MFT_OCSP_TIMEOUT = 1
    root = make_root("OCSP RSA Root", key=rsa_key)
    flows.add_to_store(Store.ROOT, [root.cert], ACTOR)
    return root


PSS = ("-ndays", "1", "-rsigopt", "rsa_padding_mode:pss")
PSS_SALT_64 = (*PSS, "-rsigopt", "rsa_pss_saltlen:digest", "-rsigopt", "rsa_mgf1_md:sha384", "-rmd", "sha512")
RSASSA_PSS = "1.2.840.113549.1.1.10"


def answer_from(responder: Responder, ca: Issued, cert: Issued) -> bytes:
    """The responder's DER answer about ``cert``, asked directly."""
    return ocsp_client.fetch(responder.url, ocsp.build_request(cert.cert, ca.cert), time.monotonic() + 5)


@pytest.mark.parametrize("options", [PSS, PSS_SALT_64], ids=["openssl-defaults", "salt-64-mgf1-sha384-sha512"])
def test_answer_signed_with_rsa_pss_is_verified(rsa_ca, responders, options):
    ca = rsa_ca
    port = free_port()
    olga = client_for(ca, port)
    responder = responders(ca, ca, [index_line(olga.cert)], port, *options)
    der = answer_from(responder, ca, olga)
    assert x509_ocsp.load_der_ocsp_response(der).signature_algorithm_oid.dotted_string == RSASSA_PSS
    by_ocsp()
    connection = judge(olga)
    assert connection.ok, connection.reason
    assert leaf_status(connection).status == "good"


def test_tampered_rsa_pss_answers_are_refused(rsa_ca, responders, fixed_answers):
    ca = rsa_ca
    port, fixed = fixed_answers()
    olga = client_for(ca, port)  # her responder is the server that sends tampered answers
    real_port = free_port()
    responder = responders(ca, ca, [index_line(olga.cert)], real_port, *PSS_SALT_64)
    der = answer_from(responder, ca, olga)
    parsed = x509_ocsp.load_der_ocsp_response(der)
    assert parsed.signature_algorithm_oid.dotted_string == RSASSA_PSS
    assert ocsp.judge(der, olga.cert, ca.cert, NOW, responder.url).status == "good"
    # One bit of the signature flipped.
    at = der.index(parsed.signature) + 10
    flipped = der[:at] + bytes([der[at] ^ 1]) + der[at + 1 :]
    # The salt length the parameters state (64, the digest length: [2] INTEGER 0x40) changed to
    # 65: the signature does not cover its algorithm identifier, so only verifying with it tells.
    salt = b"\xa2\x03\x02\x01\x40"
    assert der.count(salt) == 1
    other_salt = der.replace(salt, b"\xa2\x03\x02\x01\x41")
    for tampered in (flipped, other_salt):
        answer = ocsp.judge(tampered, olga.cert, ca.cert, NOW, responder.url)
        assert answer.status == "unknown", answer.why
        assert "does not verify" in answer.why
        fixed.body = tampered
        by_ocsp()
        connection = judge(olga)
        assert not connection.ok
        assert leaf_status(connection).status == "unknown"
        assert "does not verify" in connection.reason
    assert fixed.asked == 2
    # Parameters with a field RSASSA-PSS-params does not have: unknown, never an error.
    unreadable = der.replace(salt, b"\xa5\x03\x02\x01\x40")
    assert ocsp.judge(unreadable, olga.cert, ca.cert, NOW, "x").status == "unknown"
    # Whatever is changed or cut off, the answer is judged, never an error.
    chance = random.Random(6960)  # noqa: S311 - reproducible mutations, not secrets
    for _ in range(3000):
        mutated = bytearray(der)
        for _ in range(chance.randint(1, 4)):
            mutated[chance.randrange(len(mutated))] = chance.randrange(256)
        if chance.random() < 0.2:
            mutated = mutated[: chance.randrange(len(mutated))]
        assert ocsp.judge(bytes(mutated), olga.cert, ca.cert, NOW, "x").status in ("good", "revoked", "unknown")
    # What it sent untouched is good.
    fixed.body = der
    assert judge(olga).ok


# --- backoff -------------------------------------------------------------------------------------


class Counting:
    """A real listening socket that counts the connections it accepts, and closes each at once
    (``hold``: keeps each open, unanswered, until it is stopped)."""

    def __init__(self, hold: bool = False, port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.accepted, self.held, self.hold = 0, [], hold
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.hold:
                self.held.append(conn)
            else:
                conn.close()

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.sock.close()
        for conn in self.held:
            conn.close()
        self.thread.join(5)


@pytest.fixture
def counting():
    made = []

    def make(**kwargs) -> Counting:
        made.append(Counting(**kwargs))
        return made[-1]

    yield make
    for server in made:
        server.stop()


@pytest.mark.django_db
@pytest.mark.parametrize("hold", [False, True], ids=["closes-at-once", "never-answers"])
def test_a_responder_that_failed_is_not_asked_again_for_a_while(ca, counting, hold):
    server = counting(hold=hold)
    olga = client_for(ca, server.port)
    url = f"http://127.0.0.1:{server.port}/"
    by_ocsp()
    connection = judge(olga)
    assert not connection.ok
    assert server.accepted == 1
    failure = "did not answer within 1 seconds" if hold else "could not be reached"
    assert failure in connection.reason
    state = ocsp_client.backoff(url)
    assert state["failures"] == 1 and state["until"] - state["failed_at"] == pytest.approx(30)
    # The next decision does not touch the network: unknown at once, and it says why.
    started = time.monotonic()
    connection = judge(olga)
    elapsed = time.monotonic() - started
    assert server.accepted == 1
    assert elapsed < 0.5
    assert not connection.ok
    assert leaf_status(connection).status == "unknown"
    reason = connection.reason
    assert f"the OCSP responder {url} was not asked: it {failure}" in reason
    assert "(1 failure in a row)" in reason
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state["until"]))
    assert f"so it is not asked again before {until}" in reason
    assert "refuses certificates whose status is unknown" in reason
    # Another certificate of the same responder waits too; a policy that allows unknown lets it in.
    by_ocsp(when_unknown="allow")
    assert judge(client_for(ca, server.port, "Oscar")).ok
    assert server.accepted == 1


def test_backoff_doubles_to_its_cap_and_an_answer_resets_it(ca, responders, counting, settings):
    settings.MFT_OCSP_BACKOFF_SECONDS = 1
    settings.MFT_OCSP_BACKOFF_MAX_SECONDS = 1.5
    server = counting()
    port = server.port
    url = f"http://127.0.0.1:{port}/"
    olga = client_for(ca, port)
    by_ocsp()
    assert not judge(olga).ok
    first = ocsp_client.backoff(url)
    assert first["failures"] == 1 and first["until"] - first["failed_at"] == pytest.approx(1)
    assert not judge(olga).ok
    assert server.accepted == 1
    # Past the wait it is asked again; it fails again, and the wait doubles (up to the cap).
    time.sleep(max(0, first["until"] - time.time()) + 0.1)
    assert not judge(olga).ok
    assert server.accepted == 2
    second = ocsp_client.backoff(url)
    assert second["failures"] == 2 and second["until"] - second["failed_at"] == pytest.approx(1.5)
    # A real responder takes the port over; once the wait is over it is asked, and it answers.
    server.stop()
    responder = responders(ca, ca, [index_line(olga.cert)], port)
    assert "was not asked" in judge(olga).reason
    time.sleep(max(0, second["until"] - time.time()) + 0.1)
    connection = judge(olga)
    assert connection.ok, connection.reason
    assert ocsp_client.backoff(url) is None
    # Reset: when it fails next, the wait starts again from the base.
    responder.process.terminate()
    responder.process.wait(timeout=10)
    assert not judge(client_for(ca, port, "Olga Too")).ok
    again = ocsp_client.backoff(url)
    assert again["failures"] == 1 and again["until"] - again["failed_at"] == pytest.approx(1)


# --- the stored answers ----------------------------------------------------------------------


def kept_answer(pair: Pair, der: bytes) -> ocsp.Answer:
    answer = judged(pair, der)
    assert answer.cacheable, answer.why
    return answer


@pytest.mark.django_db
def test_one_stored_answer_per_certificate_the_newer_replaces(pair):
    key = ocsp.cert_id_key(pair.cert.cert, pair.issuer.cert)
    older = build(pair, this_update=NOW - dt.timedelta(hours=2))
    newer = build(pair, this_update=NOW - dt.timedelta(hours=1), status=x509_ocsp.OCSPCertStatus.REVOKED)
    ocsp_client.keep(key, URL, older, kept_answer(pair, older))
    ocsp_client.keep(key, URL, newer, kept_answer(pair, newer))
    row = OcspResponse.objects.get()
    assert bytes(row.der) == newer and row.status == "revoked"
    # The older answer sent again (a replay) does not take the newer one's place.
    ocsp_client.keep(key, URL, older, kept_answer(pair, older))
    row = OcspResponse.objects.get()
    assert bytes(row.der) == newer


def store_row(pair: Pair, name: str, usable_until: dt.datetime) -> OcspResponse:
    cert = make_client(name, pair.issuer)
    der = build(pair, about=cert, this_update=usable_until - DAY, next_update=usable_until)
    return OcspResponse.objects.create(
        cert_id=ocsp.cert_id_key(cert.cert, pair.issuer.cert),
        responder=URL,
        der=der,
        status="good",
        this_update=usable_until - DAY,
        next_update=usable_until,
        usable_until=usable_until,
    )


@pytest.mark.django_db
def test_cron_removes_answers_past_their_next_update(pair):
    from django.core.management import call_command

    now = dt.datetime.now(dt.UTC)
    stale = store_row(pair, "Stale", now - dt.timedelta(hours=1))
    just_stale = store_row(pair, "Just Stale", now - dt.timedelta(minutes=1))  # within the clock allowance
    fresh = store_row(pair, "Fresh", now + dt.timedelta(hours=1))
    out = io.StringIO()
    call_command("certs", "crls", "fetch", stdout=out)
    assert "Removed 1 stored OCSP answer past its next update" in out.getvalue()
    assert set(OcspResponse.objects.values_list("pk", flat=True)) == {just_stale.pk, fresh.pk}
    assert not OcspResponse.objects.filter(pk=stale.pk).exists()
    # Nothing more to remove: nothing said. The JSON stays the list of fetch results.
    out = io.StringIO()
    call_command("certs", "crls", "fetch", stdout=out)
    assert "OCSP" not in out.getvalue()
    assert ocsp_client.prune(now + dt.timedelta(minutes=10)) == 1  # the one just stale
    out = io.StringIO()
    call_command("certs", "crls", "fetch", "--json", stdout=out)
    assert json.loads(out.getvalue()) == []
    assert list(OcspResponse.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_a_responder_is_blamed_for_slowness_only_with_a_fair_share_of_the_time(counting, settings):
    settings.MFT_OCSP_TIMEOUT = 1
    server = counting(hold=True)
    url = f"http://127.0.0.1:{server.port}/"
    # What a first responder left over (a fifth of the time) is not a fair chance.
    with pytest.raises(ocsp_client.FetchError, match="did not answer within 1 seconds") as leftover:
        ocsp_client.fetch(url, b"request", time.monotonic() + 0.2)
    assert not leftover.value.backoff
    with pytest.raises(ocsp_client.FetchError, match="did not answer within 1 seconds") as full:
        ocsp_client.fetch(url, b"request", time.monotonic() + 1)
    assert full.value.backoff
    assert server.accepted == 2


@pytest.mark.parametrize(
    "stored",
    [
        "not a dict",
        {"failures": "1", "failed_at": 0, "until": 2**40, "why": "x"},
        {"failures": 1, "failed_at": 0, "until": None, "why": "x"},
        {"failures": True, "failed_at": 0, "until": 2**40, "why": "x"},
        {"failures": 1, "failed_at": 0, "until": 2**40},
    ],
)
def test_a_backoff_entry_of_another_shape_means_no_backoff(ca, responders, stored):
    """What the shared cache holds under a backoff key may have been written by anything (another
    version, a shared Redis): an entry that is not exactly a backoff is ignored, never an error."""
    port = free_port()
    olga = client_for(ca, port)
    responders(ca, ca, [index_line(olga.cert)], port)
    url = f"http://127.0.0.1:{port}/"
    cache.set(ocsp_client._backoff_key(url), stored)
    assert ocsp_client.backoff(url) is None
    by_ocsp()
    connection = judge(olga)
    assert connection.ok, connection.reason


def test_an_unreachable_shared_cache_means_no_backoff_and_no_error(ca, responders, counting, settings):
    """With the shared cache down (Redis on a port nothing listens on), a responder is asked as if
    it had not failed lately: sign-on never fails because the backoff cannot be read or kept."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    server = counting()
    olga = client_for(ca, server.port)
    by_ocsp()
    for _ in range(2):
        connection = judge(olga)
        assert not connection.ok and "could not be reached" in connection.reason
    assert server.accepted == 2  # no backoff could be kept, so it was asked each time
    port = free_port()
    oscar = client_for(ca, port, "Oscar")
    responders(ca, ca, [index_line(oscar.cert)], port)
    assert judge(oscar).ok
