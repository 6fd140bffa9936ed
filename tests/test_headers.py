"""Security headers: a Content-Security-Policy everywhere, HSTS over HTTPS, and nothing an
administrator sees kept in a cache."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_every_page_forbids_inline_script_and_framing(client):
    policy = client.get(reverse("login"))["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def test_https_responses_carry_hsts(client):
    response = client.get(reverse("login"), secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_admin_pages_and_the_home_page_are_never_cached(client, alice):
    client.force_login(alice)
    for url in (reverse("home"), reverse("users:list"), reverse("certs:roots"), reverse("users:audit")):
        assert "no-store" in client.get(url)["Cache-Control"], url
