"""No input makes a page answer 500: random form values on every certificate page, random
header values in every proxy format. The test client re-raises what a view lets through."""

import base64
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs import flows
from certs.models import Store
from certs.org_ca import create as create_org_ca
from certs.x509 import sha1_thumbprint
from signon.proxy import DEFAULT_HEADERS, FORMATS
from tests.conftest import ACTOR, install

pytestmark = pytest.mark.django_db

text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=60)
blobs = st.binary(max_size=600)
lenient = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def admin(client, alice, rich, spec):
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    create_org_ca("Fuzz CA", ACTOR)
    client.force_login(alice)
    return client


@lenient
@given(
    kind=text,
    value=text,
    cn=text,
    days=text,
    key=text,
    password=text,
    blob=blobs,
    name=st.sampled_from(["cert.pem", "cert.der", "bundle.p7b", "id.p12", "id.pfx", "noextension"]),
)
def test_certificate_pages_never_answer_500(admin, kind, value, cn, days, key, password, blob, name):
    posts = [
        (reverse("certs:add-credential", args=["rich"]), {"kind": kind, "value": value}),
        (reverse("certs:create-certificate", args=["rich"]), {"cn": cn, "key_type": key, "days": days}),
        (reverse("certs:match-cn"), {"match_cn": value}),
        (reverse("certs:org-ca-create"), {"cn": cn, "key_type": key, "days": days, "rotate": value}),
        (reverse("certs:cas-add-from-root"), {"entry": value}),
        (reverse("certs:revocation-default"), {"check": kind, "when_unknown": value, "grace_hours": days}),
        (reverse("certs:revocation-ca"), {"ca": cn, "check": kind, "when_unknown": value, "grace_hours": days}),
    ]
    uploads = [
        reverse("certs:import-certificates", args=["rich"]),
        reverse("certs:roots-add"),
        reverse("certs:intermediates-add"),
        reverse("certs:cas-add"),
        reverse("certs:org-ca-import"),
        reverse("certs:crls-add"),
    ]
    for address, data in posts:
        assert admin.post(address, data).status_code in (200, 302, 400), address
    for address in uploads:
        response = admin.post(address, {"file": SimpleUploadedFile(name, blob), "password": password})
        assert response.status_code in (200, 302, 400), address
    assert admin.get(reverse("users:list"), {"q": value}).status_code == 200


def header_values():
    pem_like = st.builds(
        lambda head, body, tail: head + body + tail,
        st.sampled_from(["-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\n", "", ":", '"']),
        st.one_of(text, st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())),
        st.sampled_from(["-----END CERTIFICATE-----", "", ":", '"', ";Cert=", ","]),
    )
    return st.one_of(text, pem_like, pem_like.map(lambda v: quote(v, safe="")))


@lenient
@given(
    proxy_format=st.sampled_from([f for f in FORMATS if f != "builtin"]), cert=header_values(), other=header_values()
)
def test_no_header_value_answers_500(settings, spec, rich, proxy_format, cert, other):
    install(Store.ROOT, spec.toot)
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    settings.MFT_PROXY_FORMAT = proxy_format
    names = DEFAULT_HEADERS[proxy_format]
    settings.MFT_PROXY_HEADERS = names
    headers = {"HTTP_" + names.cert.upper().replace("-", "_"): cert.replace("\x00", "")}
    for extra in (names.chain, names.verify):
        if extra:
            headers["HTTP_" + extra.upper().replace("-", "_")] = other.replace("\x00", "")
    response = Client().get("/api/whoami", **headers)
    assert response.status_code in (200, 400)
