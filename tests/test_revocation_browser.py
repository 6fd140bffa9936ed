"""Revocation in a real Chromium: an administrator adds a CRL on the Revocation page, sets the org
policy to check CRLs, and the doctor then says the certificate the CRL lists is revoked."""

import pytest
from cryptography import x509

from tests.browser_support import app_fixture, browser_fixture, page_fixture, sign_in  # noqa: F401 - the fixtures
from tests.pki import crl_pem, make_client, make_crl, make_intermediate, make_root

pytestmark = pytest.mark.e2e


def test_an_administrator_revokes_by_crl_and_the_doctor_says_so(page, app, tmp_path):
    root = make_root("Revocation Page Root")
    ca = make_intermediate("Revocation Page CA", root)
    leaf = make_client("Revoked Laptop", ca)
    (tmp_path / "root.pem").write_bytes(root.pem)
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    # Both CAs' CRLs in one PEM file: the CA's lists the laptop.
    crl = crl_pem(make_crl(root)) + crl_pem(make_crl(ca, [(leaf.cert, x509.ReasonFlags.key_compromise)], number=2))
    (tmp_path / "crls.pem").write_bytes(crl)
    app.manage("certs", "roots", "add", str(tmp_path / "root.pem"))
    app.manage("certs", "intermediates", "add", str(tmp_path / "ca.pem"))
    app.manage("users", "add", "laptop-owner")
    app.manage("certs", "user", "laptop-owner", "import", str(tmp_path / "leaf.pem"))

    sign_in(page)
    page.get_by_role("button", name="Trust", exact=True).click()
    page.get_by_role("link", name="Revocation").click()
    page.get_by_role("heading", name="Revocation", exact=True).wait_for()
    page.get_by_text("Revocation is not checked.").wait_for()

    # Upload the CRLs.
    page.set_input_files("#crls-add-form #id_file", str(tmp_path / "crls.pem"))
    page.locator("#crls-add-form").get_by_role("button", name="Add").click()
    page.get_by_text("Added the CRL of 'Revocation Page CA'").wait_for()
    table = page.locator("#stored-crls")
    assert "Revocation Page CA" in table.inner_text() and "Revocation Page Root" in table.inner_text()

    # Check revocation by CRL, for the whole organisation.
    form = page.locator("#revocation-default-form")
    form.locator("#id_check").select_option("crl")
    form.locator("#id_when_unknown").select_option("refuse")
    form.get_by_role("button", name="Save").click()
    page.get_by_text("Revocation policy for the org default: checked by CRL").wait_for()
    assert page.inner_text("#default-policy").startswith("Checked by CRL")

    # The doctor, for the laptop's certificate: revoked.
    page.get_by_role("link", name="Doctor").click()
    page.set_input_files("#doctor-form #id_file", str(tmp_path / "leaf.pem"))
    page.locator("#doctor-form").get_by_role("button", name="Examine").click()
    page.locator("#chain-picture").wait_for()
    assert "REVOKED" in page.inner_text("#chain-picture")
    assert "was revoked on" in page.inner_text("main")
