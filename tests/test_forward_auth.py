"""The forward-auth gate (/auth/forward): the HTTPS policy decides, no session is read or made."""

import base64
from urllib.parse import quote

import pytest

from audit.models import AuditEvent
from certs import flows
from certs.models import Store, TankEntry
from certs.x509 import sha1_thumbprint
from signon.gate import basic_credentials
from tests.conftest import ACTOR, install

pytestmark = pytest.mark.django_db

PASSWORD = "a fine passphrase"


def forwarded(issued):
    return {"HTTP_X_SSL_CLIENT_CERT": quote(issued.pem.decode(), safe=""), "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"}


def basic(username, password):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.fixture
def frank_is_rich(spec, rich):
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    rich.set_password(PASSWORD)
    rich.https_mode = "cert"
    rich.save()
    return rich


def test_a_certificate_that_signs_someone_on_is_let_through_with_who_and_how(client, spec, frank_is_rich):
    response = client.get("/auth/forward", **forwarded(spec.frank))
    assert response.status_code == 200
    assert (response["X-MFT-User"], response["X-MFT-Rule"], response["X-MFT-Method"]) == (
        "rich",
        "thumbprint",
        "certificate",
    )
    assert "sessionid" not in response.cookies and not response.has_header("Set-Cookie")
    assert AuditEvent.objects.filter(action="signon.success", target_name="rich").exists()


def test_nothing_presented_asks_for_credentials(client, frank_is_rich):
    response = client.get("/auth/forward")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")


def test_a_certificate_that_cannot_connect_is_forbidden(client, spec, frank_is_rich):
    response = client.get("/auth/forward", **forwarded(spec.stranger))
    assert response.status_code == 403
    assert b"Sign-on failed." in response.content and b"cannot" not in response.content


def test_a_certificate_that_connects_but_authenticates_nobody_is_forbidden_and_kept_in_the_tank(
    client, spec, frank_is_rich
):
    assert client.get("/auth/forward", **forwarded(spec.dick)).status_code == 403
    assert TankEntry.objects.filter(user=None).count() == 1


def test_cert_and_password_mode_wants_both(client, spec, frank_is_rich):
    frank_is_rich.https_mode = "cert-and-password"
    frank_is_rich.save()
    assert client.get("/auth/forward", **forwarded(spec.frank)).status_code == 401
    assert client.get("/auth/forward", **basic("rich", PASSWORD)).status_code == 403
    both = client.get("/auth/forward", **forwarded(spec.frank), **basic("rich", PASSWORD))
    assert (both.status_code, both["X-MFT-Method"]) == (200, "certificate+password")
    wrong = client.get("/auth/forward", **forwarded(spec.frank), **basic("rich", "not it"))
    assert wrong.status_code == 403


def test_the_password_mode_signs_on_by_basic_credentials(client, frank_is_rich):
    frank_is_rich.https_mode = "password"
    frank_is_rich.save()
    response = client.get("/auth/forward", **basic("rich", PASSWORD))
    assert (response.status_code, response["X-MFT-User"], response["X-MFT-Rule"]) == (200, "rich", "")


def test_a_session_cookie_counts_for_nothing(client, spec, frank_is_rich, alice):
    client.force_login(alice)
    assert client.get("/auth/forward").status_code == 401


def test_certificate_headers_from_an_address_that_is_not_a_proxy_are_ignored(client, spec, frank_is_rich):
    response = client.get("/auth/forward", REMOTE_ADDR="192.0.2.7", **forwarded(spec.frank))
    assert response.status_code == 401


@pytest.mark.parametrize("method", ["post", "put", "delete", "head"])
def test_any_method_and_any_path_below_it_is_answered(client, spec, frank_is_rich, method):
    # Envoy's ext_authz appends the original path and may keep the original method.
    response = getattr(client, method)("/auth/forward/some/file.txt", **forwarded(spec.frank))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer abc", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic " + "A" * 5000],
)
def test_malformed_authorization_is_refused_not_an_error(client, frank_is_rich, header):
    assert client.get("/auth/forward", HTTP_AUTHORIZATION=header).status_code == 401
    with pytest.raises(ValueError):
        basic_credentials(header)


def test_basic_credentials_allow_a_colon_in_the_password():
    header = "Basic " + base64.b64encode("rich:pa:ss wörd".encode()).decode()
    assert basic_credentials(header) == ("rich", "pa:ss wörd")
    assert basic_credentials(None) is None
