"""The built-in HTTPS server's TLS context: rebuilt when the root store changes, and never lost."""

from types import SimpleNamespace

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from certs import flows
from certs.models import Store, TrustSettings
from signon import tls
from tests.conftest import install

pytestmark = pytest.mark.django_db


@pytest.fixture
def conf(tmp_path):
    cert, key, _ = tls.ensure_server_certificate(tmp_path)
    return SimpleNamespace(certfile=str(cert), keyfile=str(key))


@pytest.fixture
def contexts(monkeypatch):
    cache = tls.ContextCache()
    monkeypatch.setattr(tls, "_contexts", cache)
    monkeypatch.setattr(tls, "CHECK_EVERY_SECONDS", 0.0)
    return cache


@pytest.fixture
def admin_client(client, alice):
    client.force_login(alice)
    return client


def broken_store(*args, **kwargs):
    raise flows.FlowError("The root store could not be exported faithfully; nothing was written.")


def test_the_context_trusts_the_root_store_and_follows_its_changes(conf, contexts, spec):
    assert contexts.get(conf).cert_store_stats()["x509_ca"] == 0
    install(Store.ROOT, spec.toot)
    assert contexts.get(conf).cert_store_stats()["x509_ca"] == 1


def test_a_failed_rebuild_keeps_the_last_good_context_and_says_so(conf, contexts, spec, monkeypatch, admin_client):
    install(Store.ROOT, spec.toot)
    good = contexts.get(conf)
    monkeypatch.setattr(flows, "export_roots", broken_store)
    TrustSettings.bump()
    assert contexts.get(conf) is good
    assert "keeps the previous trusted root store" in tls.context_failure()
    contexts.get(conf)
    TrustSettings.bump()
    contexts.get(conf)
    assert AuditEvent.objects.filter(action="tls.context_failed").count() == 2  # once per configuration
    page = admin_client.get(reverse("home")).content.decode()
    assert "could not load the trusted root store" in page
    monkeypatch.undo()
    TrustSettings.bump()
    contexts.get(conf)
    assert tls.context_failure() is None


def test_without_any_good_context_the_server_still_starts(conf, contexts, monkeypatch):
    monkeypatch.setattr(flows, "export_roots", broken_store)
    context = contexts.get(conf)
    assert context.cert_store_stats()["x509_ca"] == 0
    assert "accepts no client certificates" in tls.context_failure()


def test_a_subject_that_looks_like_a_certificate_cannot_break_the_bundle(spec, admin_client):
    from tests.pki import make_root

    trap = make_root("x\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIB")
    install(Store.ROOT, spec.toot, trap)
    bundle, count = flows.export_roots()
    assert count == 2 and bundle.count("-----BEGIN CERTIFICATE-----") == 2
    response = admin_client.get(reverse("certs:roots-bundle"))
    assert response.status_code == 200 and response.content.decode() == bundle
