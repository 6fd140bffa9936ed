"""A 2 GB file up and down over HTTPS (the built-in server), streamed: the workers' memory stays
small, and the SHA-256 recorded for each transfer is the file's.

One careful test: it moves 4 GB through TLS, so it is the only one of its size.
"""

import hashlib
import json
import subprocess
import threading
import time

import pytest

from tests.e2e import AppServer, HttpsClient
from tests.ftps_support import curl

pytestmark = pytest.mark.e2e

SIZE = 2 * 1024**3
PASSWORD = "a long user passphrase"


def peak_memory_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def workers(master: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def test_a_2_gb_file_streams_up_and_down_with_its_sha256(tmp_path):
    program = curl()
    app = AppServer(tmp_path / "app", builtin_tls=True, workers=1)
    (tmp_path / "app").mkdir()
    app.start()
    try:
        (tmp_path / "pw").write_text(PASSWORD)
        app.manage("users", "add", "rich", "--password-file", str(tmp_path / "pw"))
        browser = HttpsClient(app.url, cafile=app.server_certificate)
        browser.post_form("/accounts/login/", {"username": "rich", "password": PASSWORD})
        assert browser.whoami()["username"] == "rich"
        cookies = "; ".join(f"{c.name}={c.value}" for c in browser.jar)
        common = [program, "-sS", "--fail", "--cacert", str(app.server_certificate), "-b", cookies]

        source = tmp_path / "big.bin"
        with open(source, "wb") as handle:  # 2 GB of a repeating pattern, written once
            block = hashlib.sha256(b"seed").digest() * 32768
            for _ in range(SIZE // len(block)):
                handle.write(block)
        expected = hashlib.sha256()
        with open(source, "rb") as handle:
            while chunk := handle.read(8 * 1024 * 1024):
                expected.update(chunk)

        upload = subprocess.run(
            [*common, "-H", f"X-CSRFToken: {browser.cookie('csrftoken')}", "-H", "Accept: application/json",
             "-H", f"Origin: {app.url}", "-F", f"files=@{source}", f"{app.url}/files/upload?path="],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert upload.returncode == 0, upload.stderr
        (result,) = json.loads(upload.stdout)["files"]
        assert (result["size"], result["sha256"]) == (SIZE, expected.hexdigest())

        got, peak = hashlib.sha256(), [0.0]
        download = subprocess.Popen([*common, f"{app.url}/files/download?path=big.bin"], stdout=subprocess.PIPE)
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                for pid in workers(app.process.pid):
                    peak[0] = max(peak[0], peak_memory_mb(pid))
                time.sleep(0.2)

        watcher = threading.Thread(target=watch)
        watcher.start()
        received = 0
        while chunk := download.stdout.read(8 * 1024 * 1024):
            got.update(chunk)
            received += len(chunk)
        assert download.wait(timeout=60) == 0
        stop.set()
        watcher.join()
        assert (received, got.hexdigest()) == (SIZE, expected.hexdigest())
        # Neither the upload nor the download held the file in memory.
        for pid in workers(app.process.pid):
            peak[0] = max(peak[0], peak_memory_mb(pid))
        assert 0 < peak[0] < 300, f"a worker's memory peaked at {peak[0]:.0f} MB"
        code = (
            "import json; from files.models import Transfer; print(json.dumps(list(Transfer.objects.order_by('id')"
            ".values_list('direction', 'size', 'sha256', 'result'))))"
        )
        assert json.loads(app.python(code)) == [
            ["upload", SIZE, expected.hexdigest(), "complete"],
            ["download", SIZE, expected.hexdigest(), "complete"],
        ]
    finally:
        app.stop()
