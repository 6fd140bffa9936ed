"""Reading certificate files and writing thumbprints: every format, every kind of bad input."""

import base64
import re

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from certs import loading
from certs import x509 as cx
from certs.loading import CertificateLoadError
from certs.x509 import ThumbprintError
from tests.pki import make_client, make_intermediate, make_root


@pytest.fixture(scope="module")
def chain():
    root = make_root("Toot")
    ca = make_intermediate("Chug and Ring", root)
    return root, ca, make_client("Frank", ca)


# --- formats that load ---------------------------------------------------------------------


def test_it_loads_one_pem_certificate(chain):
    _, _, frank = chain
    assert loading.load_certificates(frank.pem) == [frank.cert]


def test_it_loads_every_certificate_of_a_pem_bundle_in_order(chain):
    root, ca, frank = chain
    bundle = frank.pem + b"\n# comment between blocks\n" + ca.pem + root.pem
    assert loading.load_certificates(bundle) == [frank.cert, ca.cert, root.cert]


def test_it_drops_duplicate_certificates(chain):
    _, _, frank = chain
    assert loading.load_certificates(frank.pem + frank.pem) == [frank.cert]


def test_it_takes_the_certificate_and_ignores_the_key_of_a_combined_pem(chain):
    _, _, frank = chain
    assert loading.load_certificates(frank.key_pem + frank.pem) == [frank.cert]


def test_it_loads_der(chain):
    _, _, frank = chain
    assert loading.load_certificates(frank.der, filename="frank.cer") == [frank.cert]


def test_it_loads_base64_pasted_without_pem_lines(chain):
    _, _, frank = chain
    pasted = base64.encodebytes(frank.der)
    assert loading.load_certificates(pasted) == [frank.cert]


@pytest.mark.parametrize("encoding", [serialization.Encoding.DER, serialization.Encoding.PEM])
def test_it_loads_pkcs7_bundles(chain, encoding):
    root, ca, frank = chain
    data = pkcs7.serialize_certificates([frank.cert, ca.cert, root.cert], encoding)
    assert set(loading.load_certificates(data, filename="chain.p7b")) == {frank.cert, ca.cert, root.cert}


def _p12(chain, password: bytes | None):
    root, ca, frank = chain
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b"frank", frank.key, frank.cert, [ca.cert, root.cert], encryption)


def test_it_loads_the_certificates_of_a_pkcs12_file_with_its_password(chain):
    root, ca, frank = chain
    certs = loading.load_certificates(_p12(chain, b"s3cret"), "s3cret", filename="frank.pfx")
    assert certs[0] == frank.cert
    assert set(certs) == {frank.cert, ca.cert, root.cert}
    assert all(hasattr(c, "subject") for c in certs)  # certificates only, never the key


def test_it_opens_a_pkcs12_file_that_has_no_password(chain):
    certs = loading.load_certificates(_p12(chain, None), filename="frank.p12")
    assert certs[0] == chain[2].cert


def test_it_loads_one_certificate_when_one_is_expected(chain):
    assert loading.load_one_certificate(chain[2].pem) == chain[2].cert
    with pytest.raises(CertificateLoadError, match="holds 2 certificates; exactly one"):
        loading.load_one_certificate(chain[2].pem + chain[1].pem)


# --- every kind of bad input gets one clear sentence ---------------------------------------


def test_it_refuses_a_pkcs12_file_with_the_wrong_password(chain):
    with pytest.raises(CertificateLoadError, match="password does not open"):
        loading.load_certificates(_p12(chain, b"right"), "wrong")


def test_it_asks_for_the_password_of_a_protected_pkcs12_file(chain):
    with pytest.raises(CertificateLoadError, match="give its password"):
        loading.load_certificates(_p12(chain, b"right"))


@pytest.mark.parametrize("data", [b"", b"   \n\t  "])
def test_it_says_an_empty_file_is_empty(data):
    with pytest.raises(CertificateLoadError, match="^The file is empty.$"):
        loading.load_certificates(data)


def test_it_refuses_garbage_text():
    with pytest.raises(CertificateLoadError, match="not a certificate"):
        loading.load_certificates(b"hello, this is not a certificate at all!\n")


def test_it_refuses_garbage_binary():
    with pytest.raises(CertificateLoadError, match="not a certificate"):
        loading.load_certificates(bytes(range(1, 200)))


def test_it_says_a_truncated_der_file_is_truncated(chain):
    der = chain[2].der
    with pytest.raises(CertificateLoadError, match="truncated"):
        loading.load_certificates(der[: len(der) // 2])


def test_it_says_a_truncated_pem_file_is_truncated(chain):
    pem = chain[2].pem
    with pytest.raises(CertificateLoadError, match="truncated"):
        loading.load_certificates(pem[: len(pem) // 2])


def test_it_says_a_damaged_pem_block_is_damaged(chain):
    lines = chain[2].pem.splitlines()
    lines[3] = b"A" * len(lines[3])
    with pytest.raises(CertificateLoadError, match="damaged"):
        loading.load_certificates(b"\n".join(lines))


def test_it_refuses_a_pem_private_key_and_says_why(chain):
    with pytest.raises(CertificateLoadError, match="private key, not a certificate"):
        loading.load_certificates(chain[2].key_pem)


def test_it_refuses_a_der_private_key(chain):
    der = chain[2].key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CertificateLoadError, match="private key"):
        loading.load_certificates(der, filename="key.der")


def test_it_refuses_an_encrypted_private_key(chain):
    pem = chain[2].key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(CertificateLoadError, match="private key"):
        loading.load_certificates(pem)


def test_it_explains_a_certificate_signing_request(chain):
    from cryptography import x509

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Frank")]))
        .sign(chain[2].key, hashes.SHA256())
    )
    with pytest.raises(CertificateLoadError, match="signing request"):
        loading.load_certificates(csr.public_bytes(serialization.Encoding.PEM))


def test_it_explains_a_bare_public_key(chain):
    pem = (
        chain[2]
        .key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(CertificateLoadError, match="public key"):
        loading.load_certificates(pem)


def test_it_refuses_files_that_are_too_large():
    with pytest.raises(CertificateLoadError, match="larger than"):
        loading.load_certificates(b"0" * (loading.MAX_FILE_BYTES + 1))


def test_every_refusal_is_one_line(chain):
    bad_inputs = [b"", b"junk", bytes(range(256)), chain[2].der[:40], chain[2].key_pem, chain[2].pem[:300]]
    for data in bad_inputs:
        with pytest.raises(CertificateLoadError) as caught:
            loading.load_certificates(data)
        assert "\n" not in str(caught.value)
        assert str(caught.value).endswith(".")


# --- thumbprints ---------------------------------------------------------------------------

SPEC_THUMBPRINT = "3D17 CFF3 E27B 127D 2753 A7F1 873E 2743 783B FBD2"
CANONICAL = "3D17CFF3E27B127D2753A7F1873E2743783BFBD2"


@pytest.mark.parametrize(
    "written",
    [
        SPEC_THUMBPRINT,
        CANONICAL,
        CANONICAL.lower(),
        "3d:17:cf:f3:e2:7b:12:7d:27:53:a7:f1:87:3e:27:43:78:3b:fb:d2",
        "3D-17-CF-F3-E2-7B-12-7D-27-53-A7-F1-87-3E-27-43-78-3B-FB-D2",
        "\u200e3d17cff3e27b127d2753a7f1873e2743783bfbd2",  # as copied from Windows' dialog
        "  3d17 cff3 e27b 127d 2753\na7f1 873e 2743 783b fbd2  ",
        "SHA1:" + CANONICAL,
        "sha-1=" + CANONICAL,
    ],
)
def test_it_reads_the_specifications_thumbprint_in_any_common_notation(written):
    assert cx.parse_thumbprint(written) == CANONICAL


def test_it_shows_thumbprints_as_the_specification_does():
    assert cx.format_thumbprint(CANONICAL.lower()) == SPEC_THUMBPRINT


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("", "Enter a thumbprint"),
        ("3D17 CFF3", "has 40 hexadecimal digits; this one has 8"),
        ("3D17 CFF3 E27B 127D 2753 A7F1 873E 2743 783B FBDX", "found 'X'"),
        ("a" * 64, "SHA-256 fingerprint"),
    ],
)
def test_it_explains_a_thumbprint_it_cannot_read(written, message):
    with pytest.raises(ThumbprintError, match=message):
        cx.parse_thumbprint(written)


@given(st.binary(min_size=20, max_size=20), st.sampled_from(["", " ", ":", "-"]), st.booleans())
def test_any_thumbprint_survives_formatting_and_reading(digest, separator, lower):
    hexdigits = digest.hex()
    written = separator.join(hexdigits[i : i + 2] for i in range(0, 40, 2))
    written = written.lower() if lower else written.upper()
    assert cx.parse_thumbprint(written) == hexdigits.upper()
    assert cx.parse_thumbprint(cx.format_thumbprint(hexdigits)) == hexdigits.upper()


def test_thumbprint_and_fingerprint_are_sha1_and_sha256_of_the_der(chain):
    import hashlib

    frank = chain[2]
    assert cx.sha1_thumbprint(frank.cert) == hashlib.sha1(frank.der).hexdigest().upper()
    assert cx.sha256_fingerprint(frank.cert) == hashlib.sha256(frank.der).hexdigest().upper()


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Chug and Ring", "chug AND ring"),
        ("  Chug   and\tRing ", "Chug and Ring"),
        ("Stra\u00dfe", "STRASSE"),  # case folding, not just lower()
        ("Cafe\u0301", "Caf\u00e9"),  # composed and decomposed accents
    ],
)
def test_names_compare_without_case_and_extra_spaces(a, b):
    assert cx.name_key(a) == cx.name_key(b)


def test_names_that_differ_in_letters_stay_different():
    assert cx.name_key("Rich") != cx.name_key("Richard")
    assert cx.name_key("Chug and Ring") != cx.name_key("ChugandRing")


def test_a_certificate_with_several_cns_has_no_single_cn():
    cert = make_client(["Frank", "Rich"]).cert
    assert cx.common_names(cert.subject) == ["Frank", "Rich"]
    assert cx.single_common_name(cert) is None


def test_a_certificate_without_cn_has_no_single_cn_and_shows_its_dn():
    cert = make_client(None, org="Example Org").cert
    assert cx.single_common_name(cert) is None
    assert cx.display_name(cert.subject) == "O=Example Org"


def test_the_summary_shows_what_pages_need(chain):
    root, ca, frank = chain
    summary = cx.summarize(frank.cert)
    assert summary.common_name == "Frank"
    assert summary.issuer_display == "Chug and Ring"
    assert not summary.is_ca and not summary.self_signed
    assert cx.summarize(root.cert).self_signed and cx.summarize(root.cert).is_ca
    assert cx.summarize(ca.cert).is_ca and not cx.summarize(ca.cert).self_signed


# --- odd files found in review -----------------------------------------------------------------

ODD = __import__("pathlib").Path(__file__).parent / "data" / "odd"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("dupext.der", "malformed and cannot be used (Duplicate"),
        ("enveloped.p7b", "not a certificate bundle"),
        ("enveloped-pem.p7b", "not a certificate bundle"),
        ("empty-der.p7b", "The PKCS#7 file holds no certificates."),
    ],
)
def test_odd_files_get_a_sentence_not_a_traceback(name, message):
    with pytest.raises(CertificateLoadError, match=re.escape(message)):
        loading.load_certificates((ODD / name).read_bytes(), filename=name)


def test_one_byte_of_base64_is_not_a_certificate():
    with pytest.raises(CertificateLoadError):
        loading.load_certificates(b"MA==")


def test_openssl_trusted_certificate_blocks_are_read(chain):
    # OpenSSL's TRUSTED CERTIFICATE: the DER certificate followed by trust settings (here a bare SEQUENCE).
    body = base64.encodebytes(chain[2].der + b"\x30\x00")
    pem = b"-----BEGIN TRUSTED CERTIFICATE-----\n" + body + b"-----END TRUSTED CERTIFICATE-----\n"
    assert loading.load_certificates(pem) == [chain[2].cert]


def test_control_characters_in_names_are_shown_escaped():
    cert = make_client("evil\x00name\nwith lines").cert
    summary = cx.summarize(cert)
    assert summary.common_name == "evil\\x00name\\x0awith lines"
    assert "\n" not in summary.subject and "\x00" not in summary.subject


def test_full_width_letters_compare_like_their_plain_form():
    assert cx.name_key("\uff26\uff52\uff41\uff4e\uff4b") == cx.name_key("frank")
