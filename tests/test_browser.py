"""An administrator's day in a real Chromium, against the app under gunicorn.

Sign in; create a user; set the HTTPS mode to certificate-only; create the org CA; create a
new certificate for the user and open the downloaded PKCS#12 with the shown password;
import a certificate file; remove a certificate; accept a holding-tank entry. And an end user
renewing their own certificates (a new key, then a signing request).
"""

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from certs.loading import load_certificates
from certs.x509 import directly_issued_by, format_thumbprint, sha1_thumbprint
from tests.browser_support import app_fixture, browser_fixture, page_fixture, sign_in  # noqa: F401 - the fixtures
from tests.pki import make_client, make_intermediate, make_root

pytestmark = pytest.mark.e2e


def profile_entries(app, username):
    return json.loads(app.manage("certs", "user", username, "list", "--json").stdout)


def test_an_administrators_day(page, app, tmp_path):
    sign_in(page)

    # Create a user.
    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name="Create user").click()
    page.fill("#id_username", "rich")
    page.fill("#id_full_name", "Rich")
    page.fill("#id_email", "rich@example.com")
    page.get_by_role("button", name="Create user").click()
    page.get_by_role("heading", name="User Profile: rich").wait_for()

    # Set the HTTPS mode to certificate-only.
    page.get_by_role("link", name="HTTP Policy").click()
    page.get_by_role("heading", name="Edit HTTP Policy").wait_for()
    page.check("input[name=mode][value=cert]")
    page.get_by_role("button", name="Save").click()
    # rich has no certificate yet: the page says he could not sign on at all, and asks.
    page.get_by_text("rich has no certificate on the profile, so cannot sign on at all.").wait_for()
    page.get_by_role("button", name="Change the mode").click()
    page.get_by_role("heading", name="User Profile: rich").wait_for()
    users = json.loads(app.manage("users", "list", "--json").stdout)
    assert next(u for u in users if u["username"] == "rich")["https_mode"] == "cert"

    # Create the org CA.
    page.get_by_role("button", name="Trust", exact=True).click()
    page.get_by_role("link", name="Trusted CAs").first.click()
    page.fill("#org-ca-create-form #id_cn", "Browser Org CA")
    page.locator("#org-ca-create-form").get_by_role("button", name="Create").click()
    page.get_by_text("Created the org CA 'Browser Org CA'").wait_for()
    org_ca_pem = page.request.get("/trust/org-ca/certificate.pem").body()
    (org_ca,) = load_certificates(org_ca_pem)

    # Create a new certificate for the user; the PKCS#12 opens with the shown password.
    page.goto("/user/rich/")
    page.get_by_role("link", name="HTTP Policy").click()
    page.get_by_role("link", name="Edit SSL Client Certificates").click()
    page.get_by_role("heading", name="Edit SSL Client Certificates: rich").wait_for()
    assert page.input_value("#create-form #id_cn") == "rich"
    page.fill("#create-form #id_days", "30")
    page.locator("#create-form").get_by_role("button", name="Create").click()
    password = page.inner_text("#p12-password").strip()
    with page.expect_download() as download:
        page.click("#download-p12")
    bundle = pkcs12.load_pkcs12(download.value.path().read_bytes(), password.encode())
    issued = bundle.cert.certificate
    assert directly_issued_by(issued, org_ca)
    assert bundle.key is not None
    assert {e["value"] for e in profile_entries(app, "rich")} == {format_thumbprint(sha1_thumbprint(issued))}

    # Import a certificate file.
    laptop = make_client("Rich laptop", make_root("Laptop CA"))
    pem_file = tmp_path / "laptop.pem"
    pem_file.write_bytes(laptop.pem)
    page.get_by_role("link", name="Back to Edit SSL Client Certificates").click()
    page.set_input_files("#import-form #id_file", str(pem_file))
    page.locator("#import-form").get_by_role("button", name="Import").click()
    page.get_by_text("Thumbprint: recorded.").wait_for()
    laptop_thumbprint = format_thumbprint(sha1_thumbprint(laptop.cert))
    assert laptop_thumbprint in {e["value"] for e in profile_entries(app, "rich")}

    # Remove a certificate: the X asks first.
    page.get_by_role("link", name="Back to Edit SSL Client Certificates").click()
    page.get_by_role("link", name=f"Remove {laptop_thumbprint}").click()
    page.get_by_role("button", name="Remove").click()
    page.get_by_text(f"Removed thumbprint {laptop_thumbprint} from rich's profile.").wait_for()
    assert laptop_thumbprint not in {e["value"] for e in profile_entries(app, "rich")}

    # Accept a holding-tank entry: a certificate that connected with the username but did not authenticate.
    root = make_root("Corp Root")
    presented = make_client("Rich desktop", root)
    root_file, presented_file = tmp_path / "root.pem", tmp_path / "desktop.pem"
    root_file.write_bytes(root.pem)
    presented_file.write_bytes(presented.pem)
    app.manage("certs", "roots", "add", str(root_file))
    app.python(
        "from certs import flows, tank, verdicts; from certs.loading import load_certificates; "
        f"cert = load_certificates(open({str(presented_file)!r}, 'rb').read())[0]; "
        "tank.record_presentation(verdicts.judge(cert, username='rich'), cert, 'rich', 'https', '192.0.2.44')"
    )
    page.reload()
    tank_row = page.locator("#tank tbody tr", has_text="thumbprint")
    assert "192.0.2.44" in tank_row.inner_text()
    tank_row.get_by_role("button", name="Accept thumbprint").click()
    desktop_thumbprint = format_thumbprint(sha1_thumbprint(presented.cert))
    page.get_by_text(f"Accepted thumbprint {desktop_thumbprint} into rich's profile.").wait_for()
    check = json.loads(app.manage("certs", "check", str(presented_file), "--json").stdout)
    assert (check["category"], check["authenticate"]["user"]) == ("authenticates", "rich")


def test_an_end_user_cannot_reach_admin_pages(page, app, tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text("an end user's passphrase")
    app.manage("users", "add", "enduser", "--password-file", str(password_file))
    page.goto("/accounts/login/")
    page.fill("#id_username", "enduser")
    page.fill("#id_password", "an end user's passphrase")
    page.get_by_role("button", name="Sign in").click()
    response = page.goto("/trust/cas/")
    assert response.status == 403
    assert "Not allowed" in page.content()


def test_the_doctor_draws_a_three_certificate_chain(page, app, tmp_path):
    root = make_root("Doctor Root")
    ca = make_intermediate("Doctor CA", root)
    leaf = make_client("Doctor Patient", ca)
    for name, issued in (("root", root), ("ca", ca), ("leaf", leaf)):
        (tmp_path / f"{name}.pem").write_bytes(issued.pem)
    app.manage("certs", "roots", "add", str(tmp_path / "root.pem"))
    app.manage("certs", "intermediates", "add", str(tmp_path / "ca.pem"))
    sign_in(page)
    page.get_by_role("link", name="Doctor").click()
    page.set_input_files("#doctor-form #id_file", str(tmp_path / "leaf.pem"))
    page.locator("#doctor-form").get_by_role("button", name="Examine").click()
    page.locator("#chain-picture").wait_for()
    boxes = page.locator("#chain-picture .chain-box")
    assert boxes.count() == 3
    assert [boxes.nth(i).locator(".fw-semibold").inner_text() for i in range(3)] == [
        "Doctor Patient",
        "Doctor CA",
        "Doctor Root",
    ]
    assert page.locator("#chain-picture .chain-link.link-verified").count() == 2
    assert "trust anchor" in boxes.nth(2).inner_text()
    assert page.inner_text("#verdict") == "Can connect but not authenticate"


def test_the_api_docs_load_from_this_service_alone(page, app):
    """Swagger UI, from the service's own static files, under its Content-Security-Policy."""
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/api/v1/docs/")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 35
    page.get_by_text("MFT client-certificate API").first.wait_for()
    assert any(url.endswith("/api/v1/schema/") for url in requested)
    elsewhere = [url for url in requested if not url.startswith((app.url + "/", "data:"))]
    assert requested and not elsewhere, elsewhere


def test_a_signed_in_administrator_tries_an_operation_on_the_docs_page(page, app):
    """The docs page writes with the browser's session, sending its CSRF token."""
    sign_in(page)
    page.goto("/api/v1/docs/")
    operation = page.locator("#operations-Trust-match_cn_set")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator("textarea.body-param__text").fill('{"on": true}')
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert app.manage("certs", "match-cn").stdout.strip() == "Match Cert CN to Username/Full Name is on."


def test_an_end_user_renews_their_certificates_themselves(page, app, tmp_path):
    """Self-service renewal, signed on with a password: a new key (PKCS#12 with its password shown
    once), then a certificate signing request pasted into the page."""
    password_file = tmp_path / "pw"
    password_file.write_text("a renewing user's passphrase")
    app.manage("users", "add", "renewer", "--password-file", str(password_file))
    app.manage("users", "policy", "renewer", "--interface", "https", "--mode", "cert-or-password")
    if "no org CA" in app.manage("certs", "org-ca", "show").stdout:
        app.manage("certs", "org-ca", "create", "--cn", "Browser Test CA")
    app.manage("certs", "self-renewal", "automatic")
    for name in ("first", "second"):
        app.manage(
            "certs", "issue", "renewer", "--cn", f"renewer {name}", "--days", "20",
            "--out", str(tmp_path / f"{name}.p12"), "--password-file", str(password_file),
        )  # fmt: skip
    page.goto("/accounts/login/")
    page.fill("#id_username", "renewer")
    page.fill("#id_password", "a renewing user's passphrase")
    page.get_by_role("button", name="Sign in").click()
    page.goto("/files/")
    page.locator("#your-certificates summary").click()
    first = page.locator("#your-certificates tr", has_text="renewer first")
    assert "this certificate alone signs you on" in first.inner_text()
    first.get_by_role("link", name="Renew…").click()
    page.get_by_label("Make a new key for me").check()
    page.get_by_role("button", name="Renew", exact=True).click()
    page.locator("#renewal-message").wait_for()
    assert "Renewed by its owner" in page.locator("#renewal-message").inner_text()
    password = page.locator("#p12-password").inner_text().strip()
    with page.expect_download() as download:
        page.click("#download-renewed")
    bundle = pkcs12.load_pkcs12(Path(download.value.path()).read_bytes(), password.encode())
    assert bundle.cert.certificate.subject.rfc4514_string() == "CN=renewer first"

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "whatever")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    page.goto("/files/")
    page.locator("#your-certificates summary").click()
    page.locator("#your-certificates tr", has_text="renewer second").get_by_role("link", name="Renew…").click()
    page.get_by_label("I send a certificate signing request").check()
    page.fill("#id_csr_text", csr.public_bytes(serialization.Encoding.PEM).decode())
    page.get_by_role("button", name="Renew", exact=True).click()
    pem = page.locator("#renewed-pem").inner_text()
    (renewed, _ca) = load_certificates(pem.encode())
    assert renewed.subject.rfc4514_string() == "CN=renewer second" and renewed.public_key() == key.public_key()
    entries = profile_entries(app, "renewer")
    assert len(entries) == 4 and sum(1 for e in entries if e["remove_at"]) == 2
