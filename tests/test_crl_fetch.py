"""certs crls fetch: CRLs from the distribution points of certificates an admin put in the stores
or on a profile, fetched with a conditional GET, verified like any upload, never on sign-on."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from cryptography import x509
from django.core.management import call_command

from certs import crls, flows
from certs.models import Crl, Store
from tests.pki import crl_der, make_client, make_crl, make_impostor, make_intermediate, make_root

pytestmark = pytest.mark.django_db
ACTOR = "test suite"


class Server:
    """A tiny HTTP server: path -> bytes; counts requests and remembers If-Modified-Since. A path
    in ``meet`` answers only once every request waiting there has arrived (or a few seconds
    have passed); ``met`` says whether they all arrived together."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.meet: set[str] = set()
        self.met: list[bool] = []
        self.barrier: threading.Barrier | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the standard library's name
                server.requests.append((self.path, self.headers.get("If-Modified-Since")))
                if self.path in server.meet:
                    try:
                        server.barrier.wait(timeout=3)
                        server.met.append(True)
                    except threading.BrokenBarrierError:
                        server.met.append(False)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def point(url):
    dp = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
    return x509.CRLDistributionPoints([dp]), False


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def test_fetch_adds_verified_crls_and_then_waits_for_half_their_life(server):
    root = make_root("Fetch Root")
    ca = make_intermediate("Fetch CA", root, extensions=[point(server.url + "/root.crl")])
    flows.add_to_store(Store.ROOT, [root.cert], ACTOR)
    flows.add_to_store(Store.INTERMEDIATE, [ca.cert], ACTOR)
    server.files["/root.crl"] = crl_der(make_crl(root, [(ca.cert, x509.ReasonFlags.ca_compromise)]))
    (result,) = crls.fetch_crls()
    assert result.status == "added" and "Added the CRL of 'Fetch Root'" in result.message
    assert Crl.objects.get().source_url == server.url + "/root.crl"
    (again,) = crls.fetch_crls()
    assert again.status == "fresh" and len(server.requests) == 1


def test_fetch_refuses_a_crl_signed_by_the_wrong_key_and_reports_failures(server):
    root = make_root("Fetch Root")
    ca = make_intermediate("Fetch CA", root, extensions=[point(server.url + "/root.crl")])
    other = make_intermediate("Other CA", root, extensions=[point(server.url + "/missing.crl")])
    flows.add_to_store(Store.ROOT, [root.cert], ACTOR)
    flows.add_to_store(Store.INTERMEDIATE, [ca.cert, other.cert], ACTOR)
    server.files["/root.crl"] = crl_der(make_crl(root, key=make_impostor(root).key))
    results = {r.url.rsplit("/", 1)[1]: r for r in crls.fetch_crls()}
    assert results["root.crl"].status == "refused" and "signature does not verify" in results["root.crl"].message
    assert results["missing.crl"].status == "failed" and "HTTP 404" in results["missing.crl"].message
    assert not Crl.objects.exists()


def test_certificates_only_seen_at_sign_on_are_never_followed(server, rich):
    root = make_root("Fetch Root")
    flows.add_to_store(Store.ROOT, [root.cert], ACTOR)
    presented = make_client("mallory", root, extensions=[point("http://169.254.169.254/latest")])
    flows.keep_certificates(presented.cert)
    assert crls.distribution_points() == []


def test_the_command(server):
    root = make_root("Fetch Root")
    ca = make_intermediate("Fetch CA", root, extensions=[point(server.url + "/root.crl")])
    flows.add_to_store(Store.ROOT, [root.cert], ACTOR)
    flows.add_to_store(Store.INTERMEDIATE, [ca.cert], ACTOR)
    assert "No certificate in the stores" not in run("certs", "crls", "fetch")
    server.files["/root.crl"] = crl_der(make_crl(root))
    (data,) = json.loads(run("certs", "crls", "fetch", "--json"))
    assert data["status"] == "added" and data["url"] == server.url + "/root.crl"


def test_distribution_points_are_fetched_at_once_and_reported_in_order(server, settings):
    """Addresses are downloaded together, so an address that answers slowly costs its wait once,
    not once for every address after it; the results still come in the addresses' order."""
    root = make_root("Fetch Root")
    slow = [f"/slow-{i}.crl" for i in range(3)]
    cas = [
        make_intermediate(f"Slow CA {i}", root, extensions=[point(server.url + path)]) for i, path in enumerate(slow)
    ]
    flows.add_to_store(Store.ROOT, [root.cert], ACTOR)
    flows.add_to_store(Store.INTERMEDIATE, [ca.cert for ca in cas], ACTOR)
    server.meet, server.barrier = set(slow), threading.Barrier(len(slow))
    server.files[slow[1]] = crl_der(make_crl(root))
    results = crls.fetch_crls()
    assert server.met == [True] * 3, "the addresses were not asked together"
    assert [r.url for r in results] == sorted(server.url + path for path in slow)
    assert [r.status for r in results] == ["failed", "added", "failed"]
