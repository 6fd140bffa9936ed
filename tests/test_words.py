"""Pages speak in sentences for people: no framework internals, no library dumps, no codes."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, alice):
    client.force_login(alice)
    return client


def test_an_unknown_address_says_so_without_the_resolvers_name(admin):
    response = admin.get("/no/such/page/")
    body = response.content.decode()
    assert response.status_code == 404 and "There is nothing at this address." in body
    assert "Resolver404" not in body and "tried" not in body


def test_a_missing_entry_is_named_in_a_sentence(admin, rich):
    body = admin.get(reverse("certs:remove-credential", args=["rich", 999])).content.decode()
    assert "rich&#x27;s profile has no certificate entry 999." in body
    assert "matches the given query" not in body
    body = admin.get(reverse("certs:remove-org-tank-entry", args=[999])).content.decode()
    assert "The org holding tank has no entry 999." in body


def test_a_damaged_pem_is_explained_without_the_parsers_debug_dump(admin, rich, spec):
    damaged = spec.frank.pem.replace(b"MII", b"MIJ", 1)
    url = reverse("certs:import-certificates", args=["rich"])
    body = admin.post(url, {"file": SimpleUploadedFile("frank.pem", damaged)}).content.decode()
    assert "A CERTIFICATE block in the file is damaged or truncated" in body
    assert "ParseError" not in body and "{" not in body.split("damaged or truncated")[1][:200]


def test_the_favicon_is_there(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200 and b"<svg" in b"".join(response.streaming_content)


def test_the_trusted_cas_page_has_no_duplicate_ids(admin):
    import re
    from collections import Counter

    body = admin.get(reverse("certs:cas")).content.decode()
    repeated = [i for i, n in Counter(re.findall(r'\bid="([^"]+)"', body)).items() if n > 1]
    assert repeated == []
