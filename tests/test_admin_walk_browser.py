"""A walk through every admin page in Chromium, at 1280 and 1920 pixels wide, with a busy
organisation's long names (tests/walk_seed.py).

On every page: nothing scrolls sideways (neither the page nor a table's scroller), the
navigation bar is one line, no table cell is squeezed into a column of single words, an
impact preview gives its "Then" column room, and no internals or codes show. The pages are
found by walking the URL configuration, so a page added later is walked too; the pages that
only a form's answer shows (an import's result, Create New, the confirmations with an impact
preview) are reached by filling in the forms.
"""

import json
import re
from urllib.parse import quote

import pytest

from tests.browser_support import ADMIN_PASSWORD, app_fixture, browser_fixture  # noqa: F401 - the fixtures
from tests.pki import make_client, make_root
from tests.test_access import admin_url_names

pytestmark = pytest.mark.e2e

WIDTHS = (1280, 1920)
HEIGHT = 900
NARROWEST_CELL = 60  # pixels: a cell holding words is at least this wide
THEN_COLUMN = 200  # pixels: an impact preview's "Then" column
INTERNALS = ("Traceback", "Resolver404", "matches the given query", "ParseError", "DoesNotExist", "Exception")
CODES = {"cannot_connect", "connects_only", "match_cn"}

# Admin addresses that are no page of their own: actions a form posts to (their answers are
# walked below, by posting the forms), downloads, and the picker's suggestions.
NOT_PAGES = {
    "users:suggest",
    "users:revoke-token",
    "certs:add-credential",
    "certs:import-certificates",
    "certs:create-certificate",
    "certs:issued",
    "certs:download-issued",
    "certs:accept-tank-entry",
    "certs:assign-tank-entry",
    "certs:cas-add",
    "certs:cas-add-from-root",
    "certs:match-cn",
    "certs:auto-renew",
    "certs:self-renewal",
    "certs:org-ca-create",
    "certs:org-ca-import",
    "certs:org-ca-download",
    "certs:roots-add",
    "certs:roots-bundle",
    "certs:intermediates-add",
    "certs:revocation-default",
    "certs:revocation-ca",
    "certs:crls-add",
    "certs:crls-fetch",
    "certs:certificate-download",
    "files:user-download",
    "files:user-upload",
    "files:user-folder",
}

MEASURE = r"""([narrowest, thenColumn]) => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth} px wide in a ${window.innerWidth} px window`);
  }
  const describe = (el) => (el.innerText || "").trim().replace(/\s+/g, " ").slice(0, 60);
  for (const scroller of document.querySelectorAll(".table-responsive")) {
    if (scroller.scrollWidth > scroller.clientWidth + 1) {
      const table = scroller.querySelector("table");
      problems.push(`table ${table && table.id ? "#" + table.id : ""} scrolls sideways: ` +
        `${scroller.scrollWidth} px in ${scroller.clientWidth} px`);
    }
  }
  for (const table of document.querySelectorAll("table")) {
    const box = table.parentElement;
    if (table.getClientRects().length && table.offsetWidth > box.clientWidth + 1) {
      problems.push(`table ${table.id ? "#" + table.id : ""} sticks out of its box: ` +
        `${table.offsetWidth} px in ${box.clientWidth} px`);
    }
  }
  // One line: the bar is no taller than its brand (which never wraps) and its own padding.
  const nav = document.querySelector("nav.navbar");
  const brand = nav && nav.querySelector(".navbar-brand");
  if (brand) {
    const style = getComputedStyle(nav);
    const line = brand.getBoundingClientRect().height + parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
    const height = nav.getBoundingClientRect().height;
    if (height > line + 2) {
      problems.push(`the navigation bar is ${Math.round(height)} px high: more than one line (${Math.round(line)} px)`);
    }
  }
  for (const cell of document.querySelectorAll("table td, table th")) {
    const text = (cell.innerText || "").trim();
    const width = cell.getBoundingClientRect().width;
    // A single word that fits is fine; words in a narrow column stack one a line.
    if (/\s/.test(text) && width && width < narrowest) {
      problems.push(`a ${Math.round(width)} px narrow cell: "${describe(cell)}"`);
    }
  }
  for (const table of document.querySelectorAll("#impact table")) {
    const headers = [...table.querySelectorAll("thead th")].map((th) => th.innerText.trim());
    const column = headers.indexOf("Then");
    for (const row of table.querySelectorAll("tbody tr")) {
      const cell = row.children[column];
      if (cell && cell.getBoundingClientRect().width < thenColumn) {
        problems.push(`an impact preview's "Then" cell is ${Math.round(cell.getBoundingClientRect().width)} px wide`);
      }
    }
  }
  return problems;
}"""


@pytest.fixture(scope="module")
def seeded(app):
    out = app.python(f"import json; from tests.walk_seed import seed; print(json.dumps(seed({ADMIN_PASSWORD!r})))")
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def page(browser, app, seeded):
    context = browser.new_context(base_url=app.url, viewport={"width": WIDTHS[0], "height": HEIGHT})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", seeded["admin"])
    page.fill("#id_password", ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    yield page
    context.close()


def addresses(seeded) -> tuple[list[str], set[str]]:
    """Every admin page's address (with the seeded data), and the names of those left to the forms."""
    from django.urls import reverse

    values = {
        "username": seeded["main"],
        "interface": "https",
        "pk": seeded["credential"],
        "sha256": seeded["laptop"],
        "token": "none",
        "thumbprint": seeded["override"],
    }
    special = {
        "users:delete": {"username": seeded["leaving"]},
        "users:tokens": {"username": seeded["token_owner"]},
        "certs:remove-tank-entry": {"pk": seeded["user_tank_entry"]},
        "certs:remove-presented": {"sha256": seeded["presented"]},
        "certs:remove-org-tank-entry": {"pk": seeded["org_tank_entry"]},
        "certs:cas-approve": {"sha256": seeded["spare"]},
        "certs:roots-install": {"sha256": seeded["spare"]},
        "certs:cas-remove": {"sha256": seeded["intermediate"]},
        "certs:roots-remove": {"sha256": seeded["root"]},
        "certs:intermediates-remove": {"sha256": seeded["intermediate"]},
        "certs:crls-remove": {"pk": seeded["crl"]},
        "certs:revoke-certificate": {"pk": seeded["issued_credential"]},
    }
    queries = {"files:user-delete": "?path=" + quote(seeded["file"])}
    urls, skipped = [], set()
    for name, params in admin_url_names():
        if name in NOT_PAGES:
            skipped.add(name)
            continue
        kwargs = {param: values[param] for param in params} | special.get(name, {})
        urls.append(reverse(name, kwargs=kwargs) + queries.get(name, ""))
    # Pages of one's own, and pages with what a visitor asks of them.
    urls += [
        "/",
        "/files/",
        "/account/tokens/",
        f"/doctor/?certificate={seeded['presented']}&user={quote(seeded['main'])}",
        f"/doctor/?certificate={seeded['laptop']}",
        f"/files/user/{quote(seeded['main'])}/?path=" + quote(seeded["folder"]),
        f"/users/?q={quote('montgomery')}",
    ]
    return urls, skipped


def problems_on(page, where: str, seeded) -> list[str]:
    found = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHT})
        found += [f"{where} at {width} px: {p}" for p in page.evaluate(MEASURE, [NARROWEST_CELL, THEN_COLUMN])]
    text = page.inner_text("body")
    for word in INTERNALS:
        if word in text:
            found.append(f"{where} shows {word!r}")
    for code in CODES | set(seeded["actions"]):
        if re.search(rf"(?<![\w.]){re.escape(code)}(?![\w])", text):
            found.append(f"{where} shows the code {code!r}")
    page.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})
    return list(dict.fromkeys(found))


def test_the_walk_covers_every_admin_page(seeded):
    urls, skipped = addresses(seeded)
    names = {name for name, _ in admin_url_names()}
    assert skipped == NOT_PAGES & names, "a name in NOT_PAGES is no admin address any more"
    assert len(urls) >= 30


def test_every_admin_page_fits_at_1280_and_1920(page, seeded):
    urls, _ = addresses(seeded)
    found = []
    for url in urls:
        response = page.goto(url)
        assert response.status == 200, f"{url} answered {response.status}"
        assert response.headers["content-type"].startswith("text/html"), url
        found += problems_on(page, url, seeded)
    assert not found, "\n".join(found)


def test_pages_that_answer_a_form_fit_too(page, seeded, tmp_path):
    main = seeded["main"]
    edit = f"/user/{quote(main)}/certificates/"
    found = []

    # Import from a file: the result page.
    partner = make_client(f"{main} home office", make_root("Home Office Root Certificate Authority"))
    pem = tmp_path / "partner.pem"
    pem.write_bytes(partner.pem)
    page.goto(edit)
    page.set_input_files("#import-form #id_file", str(pem))
    page.locator("#import-form").get_by_role("button", name="Import").click()
    page.get_by_role("heading", name=f"Imported into {main}'s profile").wait_for()
    found += problems_on(page, "the import's result", seeded)

    # Create New: the page with the password.
    page.goto(edit)
    page.locator("#create-form").get_by_role("button", name="Create").click()
    page.locator("#p12-password").wait_for()
    found += problems_on(page, "Create New's result", seeded)

    # An entry another user's sign-on would share: asked first.
    page.goto(f"/user/{quote(seeded['token_owner'])}/certificates/")
    page.check("#add-form input[name=kind][value=cn]")
    page.fill("#add-form #id_value", "Christopher Montgomery-Fitzgerald Treasury Desk")
    page.locator("#add-form").get_by_role("button", name="Add").click()
    page.get_by_role("heading", name="An entry other users would share").wait_for()
    found += problems_on(page, "the sharing question", seeded)

    # A change of sign-on mode that stops certificates: its impact preview.
    page.goto(f"/user/{quote(main)}/policy/https/")
    page.check("input[name=mode][value=password]")
    page.get_by_role("button", name="Save").click()
    page.locator("#impact").wait_for()
    found += problems_on(page, "the mode change's impact preview", seeded)

    # Match CN off: its impact preview.
    page.goto("/trust/cas/")
    page.uncheck("#match-cn-form input[type=checkbox]")
    page.locator("#match-cn-form").get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="Turn Match Cert CN to Username/Full Name off").wait_for()
    found += problems_on(page, "Match CN's impact preview", seeded)

    assert not found, "\n".join(found)
