"""An end user's Files page in a real Chromium: upload several files with the progress bar,
download one, delete one."""

import hashlib
import os

import pytest

from tests.browser_support import CHROMIUM_FLAGS
from tests.e2e import AppServer, chromium_path

pytestmark = pytest.mark.e2e

PASSWORD = "an end user's passphrase"

# Records every value the progress bar shows, as the page sets it; kept across the reload that
# follows an upload.
WATCH_PROGRESS = """
window.__progress = JSON.parse(sessionStorage.getItem("__progress") || "[]");
new MutationObserver(() => {
  const bar = document.getElementById("upload-bar");
  if (bar) {
    window.__progress.push(Number(bar.value));
    sessionStorage.setItem("__progress", JSON.stringify(window.__progress));
  }
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["value"]});
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    chromium_path()
    data = tmp_path_factory.mktemp("files-browser")
    server = AppServer(data).start()
    (data / "pw").write_text(PASSWORD)
    server.manage("users", "add", "erin", "--full-name", "Erin", "--password-file", str(data / "pw"))
    yield server
    server.stop()


@pytest.fixture
def page(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        context = browser.new_context(base_url=app.url, accept_downloads=True)
        context.set_default_timeout(30_000)
        context.add_init_script(WATCH_PROGRESS)
        page = context.new_page()
        yield page
        context.close()
        browser.close()


def test_upload_with_progress_then_download_and_delete(page, app, tmp_path):
    page.goto("/accounts/login/")
    page.fill("#id_username", "erin")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your files").wait_for()

    big, small = tmp_path / "big.bin", tmp_path / "notes.txt"
    big.write_bytes(os.urandom(24 * 1024 * 1024))
    small.write_text("meeting notes\n")
    page.set_input_files("#upload-files", [str(big), str(small)])
    page.locator("#upload-form").get_by_role("button", name="Upload", exact=True).click()
    # The page reloads when both are done and shows what happened.
    page.get_by_text("2 of 2 files uploaded.").wait_for()
    assert page.locator("#upload-results .upload-ok").all_inner_texts() == [
        "Uploaded big.bin (24.0 MB)",
        "Uploaded notes.txt (14 bytes)",
    ]
    assert page.locator("#upload-bar").evaluate("bar => bar.value") == 100
    rows = page.locator("#file-list tbody tr")
    assert rows.nth(0).get_attribute("data-name") == "big.bin"
    assert "24.0\xa0MB" in rows.nth(0).inner_text()
    stored = app.data_dir / "files" / "erin" / "big.bin"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()

    with page.expect_download() as download:
        page.get_by_role("link", name="notes.txt", exact=True).click()
    assert download.value.suggested_filename == "notes.txt"
    assert download.value.path().read_text() == "meeting notes\n"

    page.get_by_role("link", name="Delete notes.txt").click()
    page.get_by_role("button", name="Delete").click()
    page.get_by_text("Deleted /notes.txt.").wait_for()
    assert page.locator("#file-list tbody tr").count() == 1
    assert not (app.data_dir / "files" / "erin" / "notes.txt").exists()


def test_the_progress_bar_moves_while_a_file_uploads(page, app, tmp_path):
    page.goto("/accounts/login/")
    page.fill("#id_username", "erin")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your files").wait_for()
    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(16 * 1024 * 1024))
    # A link of 8 MB/s, as Chromium emulates it: on loopback the upload would be over before the
    # browser reports any progress at all.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 8 * 1024 * 1024},
    )
    page.set_input_files("#upload-files", str(large))
    page.locator("#upload-form").get_by_role("button", name="Upload", exact=True).click()
    page.get_by_text("1 of 1 file uploaded.").wait_for()
    # The bar's values, as the page recorded them while the upload went on (evaluated by the
    # test itself: the page's Content-Security-Policy forbids evaluating strings in it).
    values = page.evaluate("() => window.__progress")
    assert any(0 < v < 100 for v in values), values
