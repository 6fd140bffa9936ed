"""manage.py ftpserver: settings and options that cannot be used stop it with one sentence."""

import socket

import pytest

from tests.test_settings import manage


def test_check_makes_the_shared_certificate_and_says_it_is_usable(tmp_path):
    result = manage("ftpserver", "--check", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "are usable" in result.stdout
    assert (tmp_path / "tls" / "server-cert.pem").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bind", "nonsense"], "'nonsense' is not host:port"),
        (["--bind", "::1:2121"], "without brackets"),
        (["--bind", "127.0.0.1:99999"], "is not host:port"),
        (["--bind", "off", "--implicit-bind", "off"], "Both explicit and implicit FTPS are off"),
        (["--bind", "127.0.0.1:2999", "--implicit-bind", "127.0.0.1:2999"], "cannot share"),
        (["--passive-ports", "70000-70010"], "must lie within 1024-65535"),
        (["--passive-ports", "60010-60000"], "the lower port first"),
    ],
)
def test_bad_options_end_with_status_2_and_one_sentence(tmp_path, args, message):
    result = manage("ftpserver", "--check", *args, data_dir=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MFT_FTPS_BIND", "localhost", "MFT_FTPS_BIND: 'localhost' is not host:port"),
        ("MFT_FTPS_PASSIVE_PORTS", "a-b", "MFT_FTPS_PASSIVE_PORTS: 'a-b' is neither a port nor a range"),
        ("MFT_FTPS_MASQUERADE_ADDRESS", "ftp.example.com", "is not an IP address"),
        ("MFT_TLS_CERT", "/nowhere/cert.pem", "MFT_TLS_CERT and MFT_TLS_KEY go together"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(tmp_path, variable, value, message):
    result = manage("ftpserver", "--check", env={variable: value}, data_dir=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_a_missing_certificate_file_is_named(tmp_path):
    env = {"MFT_TLS_CERT": str(tmp_path / "none.pem"), "MFT_TLS_KEY": str(tmp_path / "none.key")}
    result = manage("ftpserver", "--check", env=env, data_dir=tmp_path)
    assert result.returncode == 2 and "MFT_TLS_CERT names" in result.stderr


def test_an_address_in_use_ends_it_with_status_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert manage("migrate", "-v0", data_dir=tmp_path).returncode == 0
        result = manage("ftpserver", "--bind", f"127.0.0.1:{port}", data_dir=tmp_path)
    assert result.returncode == 1
    assert "FTPS cannot listen as configured" in result.stderr
