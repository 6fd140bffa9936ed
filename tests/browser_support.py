"""A real Chromium and the app under gunicorn for the browser tests, with an administrator.

Chromium missing skips the tests that use ``browser`` with the reason, unless
``MFT_REQUIRE_E2E=1`` turns the skip into a failure (``tests.e2e.chromium_path``). A test module
takes the fixtures by importing them (``browser_fixture`` gives it ``browser``).
"""

import pytest

from tests.e2e import AppServer, chromium_path

ADMIN_PASSWORD = "a long admin passphrase"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(name="browser", scope="module")
def browser_fixture():
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(name="app", scope="module")
def app_fixture(tmp_path_factory, browser):
    """The app, with the administrator "admin" (password ``ADMIN_PASSWORD``)."""
    data = tmp_path_factory.mktemp("browser-app")
    server = AppServer(data).start()
    password_file = data / "admin.pw"
    password_file.write_text(ADMIN_PASSWORD)
    server.manage("users", "add", "admin", "--admin", "--password-file", str(password_file))
    yield server
    server.stop()


@pytest.fixture(name="page")
def page_fixture(browser, app):
    """A page of its own (downloads accepted); the test fails if the Content-Security-Policy refused
    anything on it."""
    context = browser.new_context(base_url=app.url, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    refused = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    yield page
    context.close()
    assert not refused, f"the Content-Security-Policy refused: {refused}"


def sign_in(page):
    page.goto("/")
    page.get_by_role("link", name="Sign in").click()
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()
