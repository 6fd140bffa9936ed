"""The access matrix: every admin URL, as an anonymous visitor, an end user and an admin.

The URLs are found by walking the URL configuration, so a page added later is covered
without anyone remembering to list it here.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from certs import flows, tank, verdicts
from certs.models import Store
from certs.x509 import sha1_thumbprint, sha256_fingerprint
from tests.conftest import ACTOR, install

pytestmark = pytest.mark.django_db

# Pages anyone may reach.
PUBLIC = {"home", "healthz", "login", "logout", "certificate-sign-on", "whoami", "forward-auth", "certs:org-ca-crl"}
# EST: the CA certificate for anyone; re-enrolment by the client certificate (tests/test_est.py).
PUBLIC |= {"est-cacerts", "est-simpleenroll", "est-simplereenroll"}
# Pages every signed-on user reaches for themselves: their own files, and their own API tokens
# (tested with the tokens, in tests/test_api.py).
SIGNED_ON = {"files:home", "files:download", "files:upload", "files:folder", "files:delete"}
# Renewing one's own certificate (tests/test_self_renewal.py: only one's own, only when allowed).
OWN_CERTIFICATES = {"files:self-renew": [1], "files:self-renewed": ["t"], "files:self-renewed-download": ["t"]}
OWN_TOKENS = {"users:own-tokens", "users:revoke-own-token"}


def admin_url_names():
    names = []

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                name = f"{namespace}{pattern.name}"
                # The API answers in problems, not pages: tests/test_api_contract.py walks it.
                if name not in PUBLIC | SIGNED_ON | OWN_TOKENS | set(OWN_CERTIFICATES) and not name.startswith("api:"):
                    names.append((name, list(pattern.pattern.converters)))

    walk(get_resolver().url_patterns)
    return names


@pytest.fixture
def addresses(rich, spec):
    install(Store.ROOT, spec.toot)
    credential, _ = flows.add_cn(rich, "Dick", ACTOR)
    verdict = verdicts.judge(spec.frank.cert, [spec.chug.cert], username="rich")
    entry = tank.record_presentation(verdict, spec.frank.cert, "rich", "https", None)[0]
    values = {
        "username": "rich",
        "interface": "https",
        "pk": credential.pk,
        "token": "missing",
        "sha256": sha256_fingerprint(spec.toot.cert),
        "thumbprint": sha1_thumbprint(spec.toot.cert),
    }
    urls = []
    for name, params in admin_url_names():
        kwargs = {param: values[param] for param in params}
        if name.endswith("tank-entry"):
            kwargs["pk"] = entry.pk
        urls.append(reverse(name, kwargs=kwargs))
    return urls


def test_the_matrix_covers_every_admin_page(addresses):
    assert len(addresses) >= 35
    assert "/user/rich/certificates/" in addresses
    assert "/trust/cas/" in addresses
    assert "/users/" in addresses


def test_anonymous_visitors_are_sent_to_sign_in(client, addresses):
    for address in addresses:
        for method in (client.get, client.post):
            response = method(address)
            if response.status_code == 405:  # a method the page does not take: refused before anything
                assert response.content == b"", address
                continue
            assert response.status_code == 302, address
            assert response.url.startswith("/accounts/login/?next="), address


def test_end_users_get_403_and_no_data(client, rich, addresses, spec):
    client.force_login(rich)
    for address in addresses:
        for method in (client.get, client.post):
            response = method(address)
            assert response.status_code in (403, 405), address
            assert b"Toot" not in response.content
            assert b"Dick" not in response.content


def test_an_inactive_admin_is_refused(client, alice, addresses):
    alice.is_active = False
    alice.save()
    client.force_login(alice)
    assert client.get("/trust/cas/").status_code in (302, 403)


def test_admins_get_through(client, alice, addresses):
    client.force_login(alice)
    for address in addresses:
        response = client.get(address)
        assert response.status_code not in (403, 500), address
        assert not (response.status_code == 302 and response.url.startswith("/accounts/login/")), address


def test_own_files_pages_send_anonymous_visitors_to_sign_in(client, db):
    addresses = [reverse(name) for name in sorted(SIGNED_ON)]
    addresses += [reverse(name, args=args) for name, args in OWN_CERTIFICATES.items()]
    for name in addresses:
        for method in (client.get, client.post):
            response = method(name)
            if response.status_code == 405:
                continue
            assert response.status_code == 302 and response.url.startswith("/accounts/login/?next="), name
