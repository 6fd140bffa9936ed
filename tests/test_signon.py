"""Sign-on by client certificate through the middleware and the backend.

As Django's own remote-user tests do: one list of scenarios (no certificate, an unknown
one, a known one, the certificate gone mid-session, a user switch, an inactive user, CSRF
still enforced, ...) rerun by subclasses that change one thing: the proxy's format, or
the user's sign-on mode.
"""

import base64
import json
from urllib.parse import quote

import pytest
from django.test import Client

from audit.models import AuditEvent
from certs import flows
from certs.models import Store, TankEntry
from certs.x509 import sha1_thumbprint
from signon import flows as signon_flows
from signon.proxy import DEFAULT_HEADERS
from signon.proxy import NOTHING as NOTHING_PRESENTED
from tests.conftest import ACTOR, install
from tests.pki import make_client
from users.models import User

pytestmark = pytest.mark.django_db


def meta(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def one_line_pem(issued) -> str:
    return issued.pem.decode()


class SignOnScenarios:
    """The scenarios, with nginx's format; subclasses change the format or the mode."""

    proxy_format = "nginx"
    mode = "cert"

    @pytest.fixture(autouse=True)
    def _setup(self, settings, spec, rich, charlie):
        settings.MFT_PROXY_FORMAT = self.proxy_format
        settings.MFT_PROXY_HEADERS = DEFAULT_HEADERS[self.proxy_format]
        install(Store.ROOT, spec.toot)
        install(Store.INTERMEDIATE, spec.chug)
        for user in (rich, charlie):
            user.https_mode = self.mode
            user.set_password("a fine passphrase")
            user.save()
        flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
        flows.add_thumbprint(charlie, sha1_thumbprint(spec.dick.cert), ACTOR)
        self.spec = spec
        self.client = Client()

    # How the proxy forwards a certificate (and chain) in this format.
    def forward(self, issued, chain=()):
        pem = one_line_pem(issued)
        return {meta("X-SSL-Client-Cert"): quote(pem, safe=""), meta("X-SSL-Client-Verify"): "SUCCESS"}

    def whoami(self, issued=None, chain=(), **extra):
        """Who the browser is, after visiting a page with the certificate (the API itself keeps no
        session)."""
        headers = self.forward(issued, chain) if issued is not None else {}
        if issued is not None:
            self.client.get("/", **headers, **extra)
        response = self.client.get("/api/whoami", **headers, **extra)
        assert response.status_code == 200, response.content
        return json.loads(response.content)

    # --- the scenarios ------------------------------------------------------------------

    def test_no_certificate_means_nobody(self):
        assert self.whoami() == {"authenticated": False, "username": None, "method": None, "rule": None}

    def test_an_unknown_certificate_signs_nobody_on_and_lands_in_the_org_tank(self):
        stranger = make_client("Zed", self.spec.chug)
        assert not self.whoami(stranger)["authenticated"]
        assert TankEntry.objects.filter(user__isnull=True).count() == 1
        event = AuditEvent.objects.get(action="signon.refused")
        assert "No user was identified." in event.detail["reasons"]

    def test_known_certificate(self):
        """Signs its user on, once: the session persists."""
        assert self.whoami(self.spec.frank) == {
            "authenticated": True,
            "username": "rich",
            "method": "certificate",
            "rule": "thumbprint",
        }
        assert AuditEvent.objects.filter(action="signon.success", target_user__username="rich").count() == 1
        # The session persists: the next request is not a new sign-on.
        assert self.whoami(self.spec.frank)["username"] == "rich"
        assert AuditEvent.objects.filter(action="signon.success").count() == 1

    def test_certificate_gone_mid_session(self):
        """The session ends."""
        self.whoami(self.spec.frank)
        assert not self.whoami()["authenticated"]
        assert AuditEvent.objects.filter(action="signon.ended", summary__contains="no longer presented").exists()

    def test_another_certificate_mid_session(self):
        """The session switches to the other certificate's user."""
        assert self.whoami(self.spec.frank)["username"] == "rich"
        assert self.whoami(self.spec.dick)["username"] == "charlie"

    def test_an_inactive_user_never_signs_on(self):
        User.objects.filter(username="rich").update(is_active=False)
        assert not self.whoami(self.spec.frank)["authenticated"]

    def test_thumbprint_removed_mid_session(self, rich):
        """The session ends."""
        self.whoami(self.spec.frank)
        credential = rich.credentials.get()
        flows.remove_credential(rich, credential.pk, ACTOR)
        assert not self.whoami(self.spec.frank)["authenticated"]

    def test_csrf_is_still_enforced(self):
        client = Client(enforce_csrf_checks=True)
        response = client.post("/accounts/logout/", **self.forward(self.spec.frank))
        assert response.status_code == 403

    def test_headers_from_an_address_that_is_not_a_proxy_are_ignored(self):
        assert not self.whoami(self.spec.frank, REMOTE_ADDR="192.0.2.66")["authenticated"]
        event = AuditEvent.objects.get(action="signon.untrusted_header")
        assert event.source_address == "192.0.2.66"


class TestNginx(SignOnScenarios):
    def test_the_proxys_failure_verdict_is_final(self):
        headers = self.forward(self.spec.frank)
        headers[meta("X-SSL-Client-Verify")] = "FAILED:certificate has expired"
        response = self.client.get("/api/whoami", **headers)
        assert not json.loads(response.content)["authenticated"]
        event = AuditEvent.objects.get(action="signon.refused")
        assert "The front proxy refused the certificate: FAILED:certificate has expired." in event.detail["reasons"]

    def test_the_proxys_success_is_not_enough(self, spec):
        stranger = make_client("Frank", spec.other_root)  # the proxy claims SUCCESS; the app disagrees
        assert not self.whoami(stranger)["authenticated"]

    @pytest.mark.parametrize(
        "value",
        [
            "garbage",
            quote(quote("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", safe=""), safe=""),
            quote("-----BEGIN CERTIFICATE-----\nMIIBIjAN", safe=""),
            "x" * 70_000,
            "%E0%A4%A",
        ],
        ids=["garbage", "twice-encoded", "truncated", "oversized", "broken-escape"],
    )
    def test_malformed_headers_are_refused_with_400(self, value):
        response = self.client.get("/api/whoami", **{meta("X-SSL-Client-Cert"): value})
        assert response.status_code == 400
        assert b"could not be read" in response.content


class TestEnvoy(SignOnScenarios):
    proxy_format = "envoy"

    def forward(self, issued, chain=()):
        pem = quote(issued.pem.decode(), safe="")
        chain_pem = quote("".join(c.pem.decode() for c in (issued, *chain)), safe="")
        outer = 'By=spiffe://outer;Cert="' + quote(make_client("Outer proxy").pem.decode(), safe="") + '"'
        return {meta("X-Forwarded-Client-Cert"): f'{outer},By=spiffe://mft;Hash=00;Cert="{pem}";Chain="{chain_pem}"'}


class TestTraefik(SignOnScenarios):
    proxy_format = "traefik"

    def forward(self, issued, chain=()):
        value = ",".join(base64.b64encode(c.der).decode() for c in (issued, *chain))
        return {meta("X-Forwarded-Tls-Client-Cert"): value}


class TestHaproxy(SignOnScenarios):
    proxy_format = "haproxy"

    def forward(self, issued, chain=()):
        return {
            meta("X-SSL-Client-Cert"): base64.b64encode(issued.der).decode(),
            meta("X-SSL-Client-Chain"): base64.b64encode(b"".join(c.der for c in chain)).decode(),
            meta("X-SSL-Client-Verify"): "0",
        }


class TestApache(SignOnScenarios):
    proxy_format = "apache"

    def forward(self, issued, chain=()):
        headers = {
            meta("X-SSL-Client-Cert"): issued.pem.decode().replace("\n", " "),
            meta("X-SSL-Client-Verify"): "SUCCESS",
        }
        for index, cert in enumerate(chain):
            headers[meta(f"X-SSL-Client-Chain-{index}")] = cert.pem.decode().replace("\n", " ")
        return headers


class TestRFC9440(SignOnScenarios):
    proxy_format = "rfc9440"

    def forward(self, issued, chain=()):
        headers = {meta("Client-Cert"): f":{base64.b64encode(issued.der).decode()}:"}
        if chain:
            headers[meta("Client-Cert-Chain")] = ", ".join(f":{base64.b64encode(c.der).decode()}:" for c in chain)
        return headers


class TestChainsTheClientSends(SignOnScenarios):
    """The intermediate is not in the pool: only the chain the client sent can connect it."""

    proxy_format = "rfc9440"
    forward = TestRFC9440.forward

    def test_the_forwarded_chain_builds_the_path(self, spec, rich):
        flows.remove_from_store(Store.INTERMEDIATE, sha1_thumbprint(spec.chug.cert), ACTOR)
        assert not self.whoami(spec.frank)["authenticated"]
        self.client = Client()
        assert self.whoami(spec.frank, chain=[spec.chug])["username"] == "rich"


# --- the modes ---------------------------------------------------------------------------------


def sign_in(client, username, password="", **headers):
    return client.post("/accounts/login/", {"username": username, "password": password}, **headers)


class TestModeCert(SignOnScenarios):
    mode = "cert"

    def test_a_password_alone_is_refused(self):
        response = sign_in(self.client, "rich", "a fine passphrase")
        assert response.status_code == 200
        assert b"Sign-on failed." in response.content
        assert not self.whoami()["authenticated"]


class TestModeCertOrPassword(SignOnScenarios):
    mode = "cert-or-password"

    def test_a_password_alone_signs_on(self):
        response = sign_in(self.client, "rich", "a fine passphrase")
        assert response.status_code == 302
        assert self.whoami() == {"authenticated": True, "username": "rich", "method": "password", "rule": None}


class TestModeCertAndPassword(SignOnScenarios):
    mode = "cert-and-password"

    # Under this mode the certificate alone never signs on: the scenarios that expect it to
    # are replaced by the ones below.
    def test_known_certificate(self):
        """Does not sign on alone: the sign-in page asks for the password, the username filled in."""
        assert not self.whoami(self.spec.frank)["authenticated"]
        page = self.client.get("/accounts/login/", **self.forward(self.spec.frank))
        assert b"Enter your password as well to finish signing on." in page.content
        assert b'value="rich"' in page.content

    def test_certificate_and_password_sign_on_together(self):
        response = sign_in(self.client, "rich", "a fine passphrase", **self.forward(self.spec.frank))
        assert response.status_code == 302
        assert self.whoami(self.spec.frank) == {
            "authenticated": True,
            "username": "rich",
            "method": "certificate+password",
            "rule": "thumbprint",
        }

    def test_the_password_alone_is_refused(self):
        assert sign_in(self.client, "rich", "a fine passphrase").status_code == 200
        assert not self.whoami()["authenticated"]

    def test_the_certificate_with_a_wrong_password_is_refused(self):
        assert sign_in(self.client, "rich", "wrong", **self.forward(self.spec.frank)).status_code == 200

    def test_certificate_gone_mid_session(self):
        """The session (certificate and password) ends."""
        sign_in(self.client, "rich", "a fine passphrase", **self.forward(self.spec.frank))
        assert self.whoami(self.spec.frank)["authenticated"]
        assert not self.whoami()["authenticated"]

    def test_another_certificate_mid_session(self):
        """The session ends, and nobody is signed on: charlie would need his password too."""
        sign_in(self.client, "rich", "a fine passphrase", **self.forward(self.spec.frank))
        assert not self.whoami(self.spec.dick)["authenticated"]

    def test_thumbprint_removed_mid_session(self, rich):
        """The session ends."""
        sign_in(self.client, "rich", "a fine passphrase", **self.forward(self.spec.frank))
        flows.remove_credential(rich, rich.credentials.get().pk, ACTOR)
        assert not self.whoami(self.spec.frank)["authenticated"]


class TestModePassword(SignOnScenarios):
    mode = "password"

    def test_known_certificate(self):
        """Signs nobody on: certificates play no part, and nothing lands in a tank."""
        assert not self.whoami(self.spec.frank)["authenticated"]
        assert not TankEntry.objects.exists()

    def test_certificate_gone_mid_session(self):
        """A password session does not need the certificate: it goes on."""
        sign_in(self.client, "rich", "a fine passphrase", **self.forward(self.spec.frank))
        assert self.whoami()["method"] == "password"

    def test_another_certificate_mid_session(self):
        """A password session stays the password user's."""
        sign_in(self.client, "rich", "a fine passphrase")
        assert self.whoami(self.spec.dick)["username"] == "rich"

    def test_thumbprint_removed_mid_session(self, rich):
        """No certificate is involved in a password session: it goes on."""
        sign_in(self.client, "rich", "a fine passphrase", **self.forward(self.spec.frank))
        flows.remove_credential(rich, rich.credentials.get().pk, ACTOR)
        assert self.whoami(self.spec.frank) == {
            "authenticated": True,
            "username": "rich",
            "method": "password",
            "rule": None,
        }


# --- outside the scenario lists ----------------------------------------------------------------


@pytest.fixture
def frank_signs_on_rich(spec, rich):
    """Frank's certificate (thumbprint on rich's profile, rich's mode: certificate only), as
    nginx forwards it."""
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    rich.https_mode = "cert"
    rich.save()
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    return {meta("X-SSL-Client-Cert"): quote(spec.frank.pem.decode(), safe="")}


def test_a_wrong_username_with_a_connecting_certificate_fills_that_users_tank(spec, rich, charlie):
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    charlie.https_mode = "cert"
    charlie.save()
    client = Client()
    headers = {meta("X-SSL-Client-Cert"): quote(spec.frank.pem.decode(), safe="")}
    response = sign_in(client, "charlie", **headers)
    assert b"Sign-on failed." in response.content
    assert sorted(TankEntry.objects.filter(user=charlie).values_list("kind", flat=True)) == ["cn", "thumbprint"]


def test_a_certificate_of_several_users_needs_the_username(spec, rich, charlie):
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    for user in (rich, charlie):
        user.https_mode = "cert"
        user.save()
        flows.add_thumbprint(user, sha1_thumbprint(spec.frank.cert), ACTOR, allow_shared=True)
    client = Client()
    headers = {meta("X-SSL-Client-Cert"): quote(spec.frank.pem.decode(), safe="")}
    assert not json.loads(client.get("/api/whoami", **headers).content)["authenticated"]
    refused = AuditEvent.objects.get(action="signon.refused")
    assert any("authenticates several users" in r for r in refused.detail["reasons"])
    assert sign_in(client, "charlie", **headers).status_code == 302
    assert json.loads(client.get("/api/whoami", **headers).content)["username"] == "charlie"


def test_signing_out_does_not_sign_straight_back_in(frank_signs_on_rich):
    headers = frank_signs_on_rich
    client = Client()
    assert client.get("/", **headers, follow=True).status_code == 200
    client.post("/accounts/logout/", **headers)
    assert not json.loads(client.get("/api/whoami", **headers).content)["authenticated"]
    page = client.get("/accounts/login/", **headers)
    assert b"Sign on with this certificate" in page.content
    client.post("/accounts/certificate/", **headers)
    assert json.loads(client.get("/api/whoami", **headers).content)["username"] == "rich"


def test_the_home_page_says_who_and_how(frank_signs_on_rich):
    headers = frank_signs_on_rich
    page = Client().get("/", **headers, follow=True).content.decode()
    assert "You are signed on as <strong>rich</strong> (Rich)." in page
    assert "You signed on with your client certificate: its thumbprint is on your profile." in page


def test_a_password_session_ends_when_the_mode_stops_allowing_passwords(rich):
    rich.set_password("a fine passphrase")
    rich.save()
    client = Client()
    assert sign_in(client, "rich", "a fine passphrase").status_code == 302
    flows_mode = __import__("users.flows", fromlist=["set_sign_on_mode"]).set_sign_on_mode
    flows_mode(rich, "https", "cert", ACTOR)
    assert not json.loads(client.get("/api/whoami").content)["authenticated"]


def test_repeated_sign_ons_fold_into_one_audit_entry(spec, rich):
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    rich.https_mode = "cert"
    rich.save()
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    headers = {meta("X-SSL-Client-Cert"): quote(spec.frank.pem.decode(), safe="")}
    for _ in range(5):  # a script without a cookie jar: every request is a sign-on
        assert json.loads(Client().get("/api/whoami", **headers).content)["authenticated"]
    AuditEvent.objects.flush_repeats()
    (event,) = AuditEvent.objects.filter(action="signon.success")
    assert event.repeats == 4
    assert event.last_at >= event.at
    # Another certificate, user or address is another kind of event.
    other = {**headers, "HTTP_X_FORWARDED_FOR": "192.0.2.9"}
    Client().get("/api/whoami", **other)
    assert AuditEvent.objects.filter(action="signon.success").count() == 2


def test_a_refused_certificate_creates_no_session_for_a_client_without_one(spec, toot_installed):
    from django.contrib.sessions.models import Session

    stranger = make_client("Zed", spec.chug)
    headers = {meta("X-SSL-Client-Cert"): quote(stranger.pem.decode(), safe="")}
    for _ in range(5):
        Client().get("/api/whoami", **headers)
    assert Session.objects.count() == 0
    assert TankEntry.objects.get().attempts == 1  # the refusal is remembered for a while: judged once


def test_a_password_sign_in_is_not_overruled_by_the_browsers_certificate(frank_signs_on_rich, alice):
    headers = frank_signs_on_rich
    client = Client()
    assert sign_in(client, "alice", "correct horse battery", **headers).status_code == 302
    assert json.loads(client.get("/api/whoami", **headers).content)["username"] == "alice"


def test_an_unknown_username_costs_a_password_hash_like_a_known_one(monkeypatch, db):
    hashed = []
    real = User.set_password
    monkeypatch.setattr(User, "set_password", lambda self, raw: hashed.append(raw) or real(self, raw))
    assert sign_in(Client(), "nobody-here", "some password").status_code == 200
    assert hashed == ["some password"]


def test_repeat_counts_of_a_burst_are_written_by_later_events_of_any_kind(spec, rich, toot_installed, monkeypatch):
    from audit import models as audit_models

    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    rich.https_mode = "cert"
    rich.save()
    headers = {meta("X-SSL-Client-Cert"): quote(spec.frank.pem.decode(), safe="")}
    for _ in range(3):
        Client().get("/api/whoami", **headers)
    monkeypatch.setattr(audit_models, "FOLD_FLUSH_SECONDS", 0.0)
    Client().get("/api/whoami", **{meta("X-SSL-Client-Cert"): quote(spec.dick.pem.decode(), safe="")})
    frank_event = AuditEvent.objects.filter(action="signon.success", target_user=rich).get()
    assert frank_event.repeats == 2


def test_many_refusals_from_one_address_are_counted_in_one_entry(db):
    for number in range(40):
        signon_flows.sign_on(NOTHING_PRESENTED, username=f"guess{number}", password="x", source_address="198.51.100.4")
    AuditEvent.objects.flush_repeats()
    refusals = ["signon.refused", "signon.throttled"]  # past 20 failures the address is throttled too
    refused = AuditEvent.objects.filter(action__in=refusals, source_address="198.51.100.4")
    assert refused.count() == signon_flows.REFUSALS_PER_MINUTE + 1
    overflow = refused.get(summary__startswith="Many sign-on refusals")
    assert overflow.repeats == 40 - signon_flows.REFUSALS_PER_MINUTE - 1


def test_headers_the_proxy_refused_are_not_kept_and_the_cache_is_bounded(spec, toot_installed, monkeypatch):
    from signon import middleware

    monkeypatch.setattr(middleware, "_parsed", middleware.cachetools.LRUCache(maxsize=20_000, getsizeof=len_of))
    stranger = make_client("Zed", spec.other_root)
    refused = {meta("X-SSL-Client-Cert"): quote(stranger.pem.decode(), safe=""), meta("X-SSL-Client-Verify"): "FAILED"}
    Client().get("/api/whoami", **refused)
    assert middleware.header_cache_usage() == (0, 0)
    for number in range(40):
        issued = make_client(f"Visitor {number}", spec.chug)
        Client().get("/api/whoami", **{meta("X-SSL-Client-Cert"): quote(issued.pem.decode(), safe="")})
    entries, size = middleware.header_cache_usage()
    assert 0 < entries < 40 and size <= 20_000


def len_of(presented):
    return presented.size()


def test_the_api_signs_a_certificate_on_without_a_session(frank_signs_on_rich):
    """A script without a cookie jar once left a session row behind with every request."""
    from django.contrib.sessions.models import Session

    for _ in range(5):
        response = Client().get("/api/whoami", **frank_signs_on_rich)
        assert json.loads(response.content)["username"] == "rich"
        assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    assert Session.objects.count() == 0
    browser = Client()
    browser.get("/", **frank_signs_on_rich)  # a browser keeps its session
    assert Session.objects.count() == 1
    assert json.loads(browser.get("/api/whoami", **frank_signs_on_rich).content)["username"] == "rich"
    assert Session.objects.count() == 1


def test_the_client_address_is_the_one_the_proxy_appended():
    """A client inside a trusted range once chose its logged address (and refusal budget) by
    writing its own X-Forwarded-For entries to the left of the proxy's."""
    from signon.proxy import client_address

    assert client_address("127.0.0.1", "198.51.100.1, 10.0.0.5", from_proxy=True) == "10.0.0.5"
    assert client_address("127.0.0.1", "198.51.100.1, 10.0.0.5", from_proxy=False) == "127.0.0.1"
    assert client_address("", "not an address", from_proxy=True) is None
