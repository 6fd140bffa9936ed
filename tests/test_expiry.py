"""What expires: the dashboard, the end user's home page, and ``certs expiring`` with its mail."""

import html
import json
import re
from urllib.parse import quote

import pytest
from django.core import mail
from django.core.management import call_command

from certs import flows
from certs.models import Store
from tests.conftest import ACTOR, install
from tests.pki import DAY, NOW, make_client

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def test_certs_expiring_lists_and_mails_the_admins(alice, spec, rich, capsys):
    soon = make_client("Soon", spec.chug, not_after=NOW + 5 * DAY)
    flows.import_to_profile(rich, [soon.cert], ACTOR)
    install(Store.ROOT, spec.toot)
    alice.email = "alice@example.com"
    alice.save()
    call_command("certs", "expiring", "--days", "10")
    out = capsys.readouterr().out
    assert "profile on rich's profile: Soon" in out
    assert "Mailed 1 administrator." in out
    (message,) = [m for m in mail.outbox if m.to == ["alice@example.com"]]  # rich is told too, on his own
    assert "Soon" in message.body
    call_command("certs", "expiring", "--days", "10", "--json", "--no-mail")
    items = json.loads(capsys.readouterr().out)
    assert [(i["kind"], i["user"], i["expired"]) for i in items] == [("profile", "rich", False)]


def test_the_dashboard_and_the_users_home_warn_of_expiry(client, alice, spec, rich):
    soon = make_client("Soon", spec.chug, not_after=NOW + 5 * DAY)
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    flows.import_to_profile(rich, [soon.cert], ACTOR)
    rich.https_mode = "cert"
    rich.save()
    page = text(client.get("/", HTTP_X_SSL_CLIENT_CERT=quote(soon.pem.decode(), safe=""), follow=True))
    assert "Your certificate Soon expires on" in page
    client.force_login(alice)
    assert "Expiring within 30 days" in text(client.get("/")) and "Soon" in text(client.get("/"))
