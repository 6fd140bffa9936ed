"""Benchmark: the FTPS server beside vsftpd, on this machine, with the same file and certificate.

    .venv/bin/python bench/ftps.py [--size-mb 1024] [--rounds 3] [--signon-seconds 10] [--clients 4]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/ftps.py

Both servers run explicit FTPS (AUTH TLS) on loopback with the app's generated server
certificate, require TLS on control and data connections, and ask for a client certificate:

- the app: ``manage.py ftpserver`` on a throwaway database (a temporary SQLite file, or a
  fresh PostgreSQL database dropped afterwards), user "bench" with the FTP policy "cert"
  and the certificate's thumbprint on the profile; every sign-on is judged by the trust
  engine and audited, every transfer hashed (SHA-256) and recorded;
- vsftpd (Debian's package, apt-get install vsftpd): anonymous FTPS with ``require_cert`` and
  ``validate_cert`` against the same root, so it verifies the same certificate.

Figures (rounds alternate between the servers; the median is shown):

- download and upload of one file of --size-mb, by curl (``--ftp-ssl-reqd --cert``), MB/s;
- sign-ons per second: --clients Python ftplib clients, each connecting, AUTH TLS with the
  client certificate, PBSZ/PROT, USER/PASS and QUIT, over and over for --signon-seconds.

It prints each figure and the app's share of vsftpd's (target: at least 0.5 for throughput).
"""

import argparse
import concurrent.futures
import ftplib
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import AppServer, free_port  # noqa: E402
from tests.ftps_support import FtpsServer, client_files  # noqa: E402
from tests.pki import make_client, make_root  # noqa: E402

VSFTPD_CONF = """\
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root={root}
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
anon_umask=022
local_enable=NO
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
rsa_cert_file={cert}
rsa_private_key_file={key}
require_cert=YES
validate_cert=YES
ca_certs_file={ca}
require_ssl_reuse=NO
ssl_ciphers=HIGH
pasv_enable=YES
max_clients=200
max_per_ip=200
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=NO
dirmessage_enable=NO
secure_chroot_dir=/var/run/vsftpd/empty
"""


class Side:
    """One server as the clients see it: where it is, who signs on, where the file is."""

    def __init__(self, name, port, username, folder_url, upload_dir):
        self.name, self.port, self.username = name, port, username
        self.folder_url, self.upload_dir = folder_url, upload_dir


def curl_seconds(args, timeout=900) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def signons_per_second(side, context, seconds, clients) -> float:
    deadline = time.monotonic() + seconds

    def worker():
        done = 0
        while time.monotonic() < deadline:
            client = ftplib.FTP_TLS(context=context, timeout=20)
            client.connect("localhost", side.port)
            client.auth()
            client.prot_p()
            client.login(side.username, "")
            client.quit()
            done += 1
        return done

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(lambda _: worker(), range(clients)))
    return total / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--signon-seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    options = parser.parse_args()
    vsftpd = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    curl = shutil.which("curl")
    if not os.access(vsftpd, os.X_OK) or not curl or os.geteuid() != 0:
        sys.exit("This benchmark needs vsftpd and curl (apt-get install vsftpd curl), run as root (vsftpd's rule).")

    work = Path(tempfile.mkdtemp(prefix="mft-bench-ftps-"))
    work.chmod(0o755)
    app = AppServer(work / "app")
    (work / "app").mkdir()
    processes = []
    try:
        app.manage("migrate", "--noinput", "-v0")
        root = make_root("Bench Root")
        client = make_client("bench", root)
        (work / "root.pem").write_bytes(root.pem)
        (work / "client.pem").write_bytes(client.pem)
        app.manage("certs", "roots", "add", str(work / "root.pem"))
        app.manage("users", "add", "bench")
        app.manage("users", "policy", "bench", "--interface", "ftps", "--mode", "cert")
        app.manage("certs", "user", "bench", "import", str(work / "client.pem"))
        ours = FtpsServer(app, extra_env={"MFT_LOG_LEVEL": "WARNING"}).start()
        processes.append(ours)
        cert, key = client_files(work, client)

        # The same file for both: made once, then linked into each server's folder.
        data = work / "file.bin"
        with open(data, "wb") as handle:
            block = os.urandom(4 * 1024 * 1024)
            for _ in range(options.size_mb // 4):
                handle.write(block)
        size_mb = data.stat().st_size / 1e6
        home = app.data_dir / "files" / "bench"
        home.mkdir(parents=True, exist_ok=True)
        os.link(data, home / "file.bin")

        anon_root = work / "vsftpd-root"
        (anon_root / "pub").mkdir(parents=True)
        anon_root.chmod(0o755)
        shutil.chown(anon_root / "pub", "ftp", "ftp")
        os.link(data, anon_root / "pub" / "file.bin")
        data.chmod(0o644)
        vs_port = free_port()
        conf = work / "vsftpd.conf"
        conf.write_text(
            VSFTPD_CONF.format(
                port=vs_port, root=anon_root, cert=ours.server_certificate,
                key=ours.server_certificate.with_name("server-key.pem"), ca=work / "root.pem",
            )
        )  # fmt: skip
        theirs = subprocess.Popen([vsftpd, str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        processes.append(theirs)
        time.sleep(0.5)
        if theirs.poll() is not None:
            sys.exit(f"vsftpd did not start: {theirs.stdout.read().decode()}")

        sides = [
            Side("app", ours.port, "bench", "", home),
            Side("vsftpd", vs_port, "anonymous", "pub/", anon_root / "pub"),
        ]
        context = ssl.create_default_context(cafile=str(ours.server_certificate))
        context.load_cert_chain(cert, key)
        common = [curl, "-sS", "--fail", "--ftp-ssl-reqd", "--cacert", str(ours.server_certificate)]
        common += ["--cert", cert, "--key", key]
        figures = {side.name: {"download": [], "upload": [], "signons": []} for side in sides}
        for index in range(options.rounds):
            for side in sides if index % 2 == 0 else reversed(sides):
                base = f"ftp://localhost:{side.port}/{side.folder_url}"
                user = ["-u", f"{side.username}:"]
                seconds = curl_seconds([*common, *user, "-o", "/dev/null", base + "file.bin"])
                figures[side.name]["download"].append(size_mb / seconds)
                seconds = curl_seconds([*common, *user, "-T", str(data), base + f"up-{index}.bin"])
                figures[side.name]["upload"].append(size_mb / seconds)
                (side.upload_dir / f"up-{index}.bin").unlink()
                rate = signons_per_second(side, context, options.signon_seconds, options.clients)
                figures[side.name]["signons"].append(rate)
                print(
                    f"round {index + 1} {side.name:7}: download {figures[side.name]['download'][-1]:7.1f} MB/s, "
                    f"upload {figures[side.name]['upload'][-1]:7.1f} MB/s, sign-ons {rate:6.1f}/s",
                    flush=True,
                )
        print(f"\n{options.size_mb} MB file, {options.rounds} rounds, medians ({os.cpu_count()} cores, loopback):")
        for what, unit in (("download", "MB/s"), ("upload", "MB/s"), ("signons", "sign-ons/s")):
            app_figure = statistics.median(figures["app"][what])
            vs_figure = statistics.median(figures["vsftpd"][what])
            ratio = app_figure / vs_figure
            print(f"  {what:9} app {app_figure:8.1f} {unit:10} vsftpd {vs_figure:8.1f} {unit:10} ratio {ratio:.2f}")
    finally:
        for process in processes:
            if isinstance(process, FtpsServer):
                process.stop()
            elif process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        app.database.drop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
