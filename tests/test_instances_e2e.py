"""Several app instances on one database and one cache: what one does applies at every other.

Two gunicorn instances share the database (PostgreSQL when DATABASE_URL names one, else a
SQLite file) and a Redis cache (MFT_CACHE_URL). An administrator removes a thumbprint through
instance A's web page; the certificate is refused at both instances on their next request.
Password guesses spread over both instances are throttled as one count.
"""

import json
from urllib.parse import quote

import pytest

from signon import throttle
from tests.e2e import AppServer, HttpsClient, redis_url
from tests.pki import make_client, make_intermediate, make_root

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "a long admin passphrase"


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
    first_dir, second_dir = tmp_path_factory.mktemp("instance-a"), tmp_path_factory.mktemp("instance-b")
    cache = redis_url(13)
    first = AppServer(first_dir, extra_env={"MFT_CACHE_URL": cache}).start()
    # The second instance shares the first one's database and secrets, as a cluster does.
    second = AppServer(
        second_dir,
        database=first.database,
        extra_env={
            "MFT_SECRET_KEY": _secret(first_dir, "secret-key"),
            "MFT_KEY_ENCRYPTION_KEY": _secret(first_dir, "key-encryption-key"),
            "MFT_CACHE_URL": cache,
        },
    ).start()
    yield first, second
    second.stop()
    first.stop()


def _secret(folder, name):
    return (folder / name).read_text().strip()


def forwarded(issued):
    return {"X-SSL-Client-Cert": quote(issued.pem.decode(), safe=""), "X-SSL-Client-Verify": "SUCCESS"}


def whoami(client, issued):
    status, body = client.request("/api/whoami", headers=forwarded(issued))
    assert status == 200, body
    return json.loads(body)


def test_removing_a_thumbprint_through_one_instance_refuses_it_at_every_instance(instances, tmp_path):
    first, second = instances
    root = make_root("Cluster Root")
    ca = make_intermediate("Cluster CA", root)
    frank = make_client("Frank", ca)
    for name, issued in (("root", root), ("ca", ca), ("frank", frank)):
        (tmp_path / f"{name}.pem").write_bytes(issued.pem)
    (tmp_path / "admin.pw").write_text(ADMIN_PASSWORD)
    first.manage("users", "add", "admin", "--admin", "--password-file", str(tmp_path / "admin.pw"))
    first.manage("users", "add", "rich", "--full-name", "Rich")
    first.manage("users", "policy", "rich", "--interface", "https", "--mode", "cert")
    first.manage("certs", "roots", "add", str(tmp_path / "root.pem"))
    first.manage("certs", "intermediates", "add", str(tmp_path / "ca.pem"))
    first.manage("certs", "user", "rich", "import", str(tmp_path / "frank.pem"))

    at_first, at_second = HttpsClient(first.url), HttpsClient(second.url)
    assert whoami(at_first, frank)["username"] == "rich"
    assert whoami(at_second, frank)["username"] == "rich"

    admin = HttpsClient(first.url)
    status, _ = admin.post_form("/accounts/login/", {"username": "admin", "password": ADMIN_PASSWORD})
    assert status == 200 and admin.whoami()["username"] == "admin"
    (entry,) = json.loads(first.manage("certs", "user", "rich", "list", "--json").stdout)
    status, page = admin.post_form(f"/user/rich/certificates/{entry['id']}/remove/", {})
    assert status == 200 and "Removed thumbprint" in page

    assert not whoami(at_second, frank)["authenticated"]
    assert not whoami(at_first, frank)["authenticated"]


def test_password_guesses_spread_over_instances_are_throttled_as_one(instances, tmp_path):
    first, second = instances
    (tmp_path / "pw").write_text("the right passphrase")
    first.manage("users", "add", "carol", "--password-file", str(tmp_path / "pw"))
    first.manage("users", "policy", "carol", "--interface", "https", "--mode", "password")
    for attempt in range(throttle.FAILURES_PER_USERNAME):
        guesser = HttpsClient((first if attempt % 2 else second).url)
        status, page = guesser.post_form("/accounts/login/", {"username": "carol", "password": f"guess {attempt}"})
        assert "Sign-on failed." in page
    for instance in (first, second):
        status, page = HttpsClient(instance.url).post_form(
            "/accounts/login/", {"username": "carol", "password": "the right passphrase"}
        )
        assert "Too many failed sign-ins. Try again in 15 minutes." in page
