"""The Files pages over HTTPS: an end user's home folder, administrators in anyone's, and the
Transfers list; uploads and downloads streamed and recorded with their SHA-256."""

import datetime as dt
import hashlib
import html
import json
import re
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished
from django.db import close_old_connections
from django.test import Client

from audit.models import AuditEvent
from certs import flows as cert_flows
from certs.models import Store
from files import views
from files.models import Transfer
from tests.conftest import ACTOR, install

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json", "HTTP_ORIGIN": "http://testserver"}


@pytest.fixture(autouse=True)
def files_dir(settings, tmp_path):
    settings.MFT_FILES_DIR = tmp_path / "files"
    return settings.MFT_FILES_DIR


@pytest.fixture
def signed_in(client, rich):
    client.force_login(rich)
    return client


def upload(client, *files, path="", url="/files/upload"):
    return client.post(f"{url}?path={quote(path)}", {"files": list(files)}, **JSON)


def close(response):
    """Close a response as a server does when done with it; as Django's test client does, without
    letting the end of the request close the test's database connection."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def download(client, path, url="/files/download"):
    response = client.get(f"{url}?path={quote(path)}")
    body = b"".join(response.streaming_content) if response.status_code == 200 else response.content
    close(response)
    return response, body


def test_an_end_users_home_is_their_files(signed_in):
    response = signed_in.get("/")
    assert response.status_code == 302 and response.url == "/files/"
    page = signed_in.get("/files/").content.decode()
    assert "Your files" in page and "This folder is empty." in page and 'id="upload-form"' in page


def test_upload_several_files_then_list_download_and_delete(signed_in, rich, files_dir):
    answer = upload(signed_in, SimpleUploadedFile("a.txt", b"alpha"), SimpleUploadedFile("b.csv", b"x,y\n1,2\n"))
    assert answer.status_code == 200
    results = json.loads(answer.content)["files"]
    assert [(r["name"], r["size"], r["sha256"]) for r in results] == [
        ("a.txt", 5, hashlib.sha256(b"alpha").hexdigest()),
        ("b.csv", 8, hashlib.sha256(b"x,y\n1,2\n").hexdigest()),
    ]
    assert (files_dir / "rich" / "a.txt").read_bytes() == b"alpha"
    page = signed_in.get("/files/").content.decode()
    assert "a.txt" in page and "b.csv" in page and "8 bytes" in page
    response, body = download(signed_in, "a.txt")
    assert body == b"alpha"
    assert response["Content-Disposition"] == 'attachment; filename="a.txt"'
    assert response["Content-Type"] == "application/octet-stream"
    assert signed_in.get("/files/delete?path=a.txt").status_code == 200  # asks first
    signed_in.post("/files/delete", {"path": "a.txt"})
    assert not (files_dir / "rich" / "a.txt").exists()
    rows = list(Transfer.objects.order_by("id").values_list("direction", "path", "size", "result", "interface"))
    assert rows == [
        ("upload", "/a.txt", 5, "complete", "https"),
        ("upload", "/b.csv", 8, "complete", "https"),
        ("download", "/a.txt", 5, "complete", "https"),
    ]
    assert AuditEvent.objects.filter(action="file.delete", target_name="rich").exists()


def test_a_download_the_client_stops_reading_is_recorded_as_aborted(signed_in, rich, rf):
    upload(signed_in, SimpleUploadedFile("big.bin", b"z" * 3_000_000))
    request = rf.get("/files/download", {"path": "big.bin"})
    request.user = rich
    response = views.download(request)  # as the server runs it, without the test client's wrapping
    next(iter(response.streaming_content))
    close(response)
    transfer = Transfer.objects.get(direction="download")
    assert (transfer.result, transfer.sha256) == ("aborted", "")
    assert 0 < transfer.size < 3_000_000


def test_folders_and_uploads_into_them(signed_in, files_dir):
    signed_in.post("/files/folder", {"path": "", "name": "reports"})
    upload(signed_in, SimpleUploadedFile("q1.txt", b"q1"), path="reports")
    assert (files_dir / "rich" / "reports" / "q1.txt").read_bytes() == b"q1"
    page = signed_in.get("/files/?path=reports").content.decode()
    assert "q1.txt" in page and 'class="breadcrumb-item"><a href="/files/?path=reports">reports' in page


@pytest.mark.parametrize("name", ["con", "a:b.txt", "trailing."])
def test_an_unportable_name_is_refused_with_the_reason_and_nothing_is_written(signed_in, files_dir, name):
    results = json.loads(upload(signed_in, SimpleUploadedFile(name, b"data")).content)["files"]
    assert results[0]["error"] and "cannot be used" in results[0]["error"]
    assert list((files_dir / "rich").iterdir()) == []


@pytest.mark.parametrize("path", ["../alice", "/etc", "a\x00b", "x" * 2000])
def test_paths_that_leave_the_home_folder_are_refused(signed_in, path):
    response = signed_in.get(f"/files/?path={quote(path)}", follow=True)
    assert response.redirect_chain and response.redirect_chain[-1][0] == "/files/"
    messages = [str(m) for m in response.context["messages"]]
    assert messages and all("500" not in m for m in messages)
    assert download(signed_in, path)[0].status_code in (302, 404)


def test_an_upload_without_the_csrf_token_writes_nothing(rich, files_dir):
    client = Client(enforce_csrf_checks=True)
    client.force_login(rich)
    response = client.post("/files/upload?path=", {"files": [SimpleUploadedFile("x.txt", b"x")]}, **JSON)
    assert response.status_code == 403
    assert not (files_dir / "rich").exists() or list((files_dir / "rich").iterdir()) == []
    without_headers = client.post("/files/upload?path=", {"files": [SimpleUploadedFile("x.txt", b"x")]})
    assert without_headers.status_code == 302
    assert not (files_dir / "rich" / "x.txt").exists()


def test_the_page_shows_how_the_user_signed_on_and_their_certificates(client, spec, rich):
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    cert_flows.import_to_profile(rich, [spec.frank.cert], ACTOR)
    rich.https_mode = "cert"
    rich.save()
    headers = {"HTTP_X_SSL_CLIENT_CERT": quote(spec.frank.pem.decode(), safe=""), "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"}
    page = re.sub(r"\s+", " ", html.unescape(client.get("/files/", **headers).content.decode()))
    assert "You signed on with your client certificate: its thumbprint is on your profile." in page
    assert "Presented by your browser" in page and "CN=Frank" in page


def test_end_users_cannot_open_folders_by_name(signed_in, charlie):
    assert signed_in.get("/files/user/charlie/").status_code == 403
    assert signed_in.get("/files/user/charlie/download?path=x").status_code == 403


def test_administrators_open_any_users_folder_and_act_in_it(client, alice, rich, files_dir):
    client.force_login(alice)
    answer = upload(client, SimpleUploadedFile("from-admin.txt", b"hi"), url="/files/user/rich/upload")
    assert json.loads(answer.content)["files"][0]["error"] is None
    assert (files_dir / "rich" / "from-admin.txt").read_bytes() == b"hi"
    assert "from-admin.txt" in client.get("/files/user/rich/").content.decode()
    _, body = download(client, "from-admin.txt", url="/files/user/rich/download")
    assert body == b"hi"
    transfer = Transfer.objects.get(direction="download")
    assert (transfer.username, transfer.actor_name) == ("rich", "alice")
    assert client.get("/files/user/nobody/").status_code == 404


def test_the_transfers_page_filters_by_user_interface_and_date(client, alice, rich, charlie):
    now = dt.datetime.now(dt.UTC)
    for who, interface, when in (
        (rich, "https", now),
        (rich, "ftps", now),
        (charlie, "ftps", now - dt.timedelta(days=3)),
    ):
        Transfer.objects.create(
            user=who, username=who.username, interface=interface, direction="upload", path=f"/{who}-{interface}.txt",
            size=1, sha256="ab" * 32, result="complete", finished_at=when,
        )  # fmt: skip
    client.force_login(alice)

    def shown(query):
        page = client.get("/transfers/" + query).content.decode()
        return sorted(re.findall(r"/(\w+-\w+)\.txt", page))

    assert shown("") == ["charlie-ftps", "rich-ftps", "rich-https"]
    assert shown("?user=RICH") == ["rich-ftps", "rich-https"]
    assert shown("?interface=ftps") == ["charlie-ftps", "rich-ftps"]
    assert shown(f"?date_from={now.date().isoformat()}") == ["rich-ftps", "rich-https"]
    assert "Choose HTTPS or FTPS." in client.get("/transfers/?interface=gopher").content.decode()
    assert "ab" * 32 in client.get("/transfers/").content.decode()
