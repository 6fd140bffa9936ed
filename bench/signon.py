"""Benchmark: requests per second for sign-on by client certificate, beside Django's remote-user sign-on.

    .venv/bin/python bench/signon.py [--seconds 10] [--rounds 3] [--workers 2] [--connections 8]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/signon.py

Two gunicorn instances with the same number of workers share one throwaway database (a
temporary SQLite file, or a fresh PostgreSQL database that is dropped afterwards):

- "certificate": the app as shipped, every request carrying a client certificate in nginx's
  format (X-SSL-Client-Cert) and no session cookie, so each request is a full sign-on:
  header decoding, path validation (cached per certificate), the three credential rules, the
  sign-on policy, the audit record and a new session;
- "remote user": the same app and page behind Django's RemoteUserMiddleware and
  RemoteUserBackend, trusting an X-Remote-User header, also without a session cookie.

Both serve GET /api/whoami. Load comes from wrk (apt-get install wrk) when it is installed,
else from a Python load generator. The rounds alternate between the two so that a noisy
machine affects both alike; the figure that matters is the ratio (target: at least 0.9).
"""

import argparse
import concurrent.futures
import http.client
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import AppServer  # noqa: E402
from tests.pki import make_client, make_intermediate, make_root  # noqa: E402


def wrk(url: str, headers: dict, seconds: int, connections: int) -> tuple[float, int]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return rate, int(errors.group(1)) if errors else 0


def python_load(url: str, headers: dict, seconds: int, connections: int) -> tuple[float, int]:
    parts = urlsplit(url)
    deadline = time.monotonic() + seconds

    def worker():
        done = failed = 0
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            connection.request("GET", parts.path, headers=headers)
            response = connection.getresponse()
            response.read()
            connection.close()
            done += 1
            failed += response.status >= 400
        return done, failed

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        results = list(pool.map(lambda _: worker(), range(connections)))
    elapsed = time.monotonic() - started
    return sum(r[0] for r in results) / elapsed, sum(r[1] for r in results)


def check(url: str, headers: dict) -> dict:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", parts.path, headers=headers)
    return json.loads(connection.getresponse().read())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    options = parser.parse_args()
    load = wrk if shutil.which("wrk") else python_load

    with tempfile.TemporaryDirectory(prefix="mft-bench-") as folder:
        folder = Path(folder)
        (folder / "a").mkdir()
        (folder / "b").mkdir()
        ours = AppServer(folder / "a", workers=options.workers, extra_env={"MFT_PROXY_FORMAT": "nginx"})
        ours.start()
        secrets = {
            "MFT_SECRET_KEY": (folder / "a" / "secret-key").read_text().strip(),
            "MFT_KEY_ENCRYPTION_KEY": (folder / "a" / "key-encryption-key").read_text().strip(),
        }
        baseline = AppServer(
            folder / "b",
            workers=options.workers,
            database=ours.database,
            extra_env={"DJANGO_SETTINGS_MODULE": "bench.remote_user_settings", **secrets},
        )
        baseline.start()
        try:
            root = make_root("Bench Root")
            ca = make_intermediate("Bench CA", root)
            frank = make_client("Frank", ca)
            for name, issued in (("root", root), ("ca", ca), ("frank", frank)):
                (folder / f"{name}.pem").write_bytes(issued.pem)
            ours.manage("users", "add", "rich", "--full-name", "Rich")
            ours.manage("users", "policy", "rich", "--interface", "https", "--mode", "cert")
            ours.manage("certs", "roots", "add", str(folder / "root.pem"))
            ours.manage("certs", "intermediates", "add", str(folder / "ca.pem"))
            ours.manage("certs", "user", "rich", "import", str(folder / "frank.pem"))

            certificate = {"X-SSL-Client-Cert": quote(frank.pem.decode(), safe=""), "X-SSL-Client-Verify": "SUCCESS"}
            remote_user = {"X-Remote-User": "rich"}
            assert check(f"{ours.url}/api/whoami", certificate)["username"] == "rich"
            assert check(f"{baseline.url}/api/whoami", remote_user)["username"] == "rich"

            print(
                f"database: {ours.database.url.split('://')[0]}, gunicorn workers: {options.workers}, "
                f"connections: {options.connections}, {options.seconds} s per run, load: {load.__name__}"
            )
            print(f"{'round':>5}  {'certificate req/s':>18}  {'remote user req/s':>18}  {'ratio':>6}")
            ratios, ours_rates, base_rates = [], [], []
            for number in range(1, options.rounds + 1):
                rate_ours, errors_ours = load(
                    f"{ours.url}/api/whoami", certificate, options.seconds, options.connections
                )
                rate_base, errors_base = load(
                    f"{baseline.url}/api/whoami", remote_user, options.seconds, options.connections
                )
                if errors_ours or errors_base:
                    print(f"  errors: certificate {errors_ours}, remote user {errors_base}")
                ratios.append(rate_ours / rate_base)
                ours_rates.append(rate_ours)
                base_rates.append(rate_base)
                print(f"{number:>5}  {rate_ours:>18.1f}  {rate_base:>18.1f}  {ratios[-1]:>6.2f}")
            print(
                f"{'median':>5}  {statistics.median(ours_rates):>18.1f}  {statistics.median(base_rates):>18.1f}  "
                f"{statistics.median(ratios):>6.2f}   (target: at least 0.90)"
            )
        finally:
            baseline.stop()
            ours.stop()


if __name__ == "__main__":
    main()
