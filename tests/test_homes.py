"""Home folders without Django: paths, names, links, and files hashed as they stream."""

import hashlib
import os

import pytest

from files.homes import Home, PathRefused, check_new_name, folder_name, names


@pytest.mark.parametrize(
    ("path", "cwd", "expected"),
    [
        ("a/b.txt", (), ("a", "b.txt")),
        ("/a/./b.txt", ("x",), ("a", "b.txt")),
        ("b.txt", ("x", "y"), ("x", "y", "b.txt")),
        ("../b.txt", ("x", "y"), ("x", "b.txt")),
        ("", ("x",), ("x",)),
        ("/", ("x",), ()),
    ],
)
def test_ftp_paths_start_at_the_home_folder_or_the_current_folder(path, cwd, expected):
    assert names(path, cwd=cwd, ftp=True) == expected


@pytest.mark.parametrize(
    ("path", "ftp", "reason"),
    [
        ("..", True, "leads out of your home folder"),
        ("a/../../etc", True, "leads out of your home folder"),
        ("../etc", False, "'..' is not allowed"),
        ("/etc/passwd", False, "not an absolute one"),
        ("C:\\Windows", False, "not an absolute one"),
        ("a\x00b", True, "NUL"),
        ("a\nb", False, "control characters"),
        ("x" * 256, True, "too long"),
        ("a/" * 600, False, "The path is too long"),
    ],
)
def test_paths_that_escape_or_hide_something_are_refused_with_the_reason(path, ftp, reason):
    with pytest.raises(PathRefused, match=reason):
        names(path, ftp=ftp)


@pytest.mark.parametrize("name", ["a:b", "con", "NUL.txt", "trailing.", " leading", "back\\slash", "..", "x" * 256])
def test_new_names_must_be_portable(name):
    with pytest.raises(PathRefused):
        check_new_name(name)


def test_ordinary_new_names_are_accepted():
    for name in ("report 2025.csv", "Straße.txt", "日本語.pdf", ".hidden"):
        check_new_name(name)


def test_folder_names_are_usernames_and_dots_cannot_name_a_parent():
    assert folder_name("rich") == "rich"
    assert folder_name("..") == "%2E%2E"
    assert folder_name(".") == "%2E"


@pytest.fixture
def home(tmp_path):
    return Home.create(tmp_path / "files", "rich")


def test_a_home_folder_is_made_private_on_first_use(home, tmp_path):
    assert home.root == (tmp_path / "files" / "rich").resolve()
    assert home.root.stat().st_mode & 0o077 == 0


def test_links_are_neither_followed_nor_listed(home, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (home.root / "link.txt").symlink_to(secret)
    (home.root / "dir").symlink_to(tmp_path)
    (home.root / "real.txt").write_text("real")
    assert [e.name for e in home.entries()] == ["real.txt"]
    for parts in (("link.txt",), ("dir", "secret.txt")):
        with pytest.raises(PathRefused, match="link"):
            home.open_read(parts)
    with pytest.raises(PathRefused, match="link"):
        home.open_write(("link.txt",))
    assert secret.read_text() == "secret"


def test_special_files_are_never_opened(home):
    os.mkfifo(home.root / "pipe")
    with pytest.raises(PathRefused, match="not a regular file"):
        home.open_read(("pipe",))


def test_a_file_written_then_read_knows_its_sha256(home):
    data = os.urandom(3 * 1024 * 1024 + 17)
    with home.open_write(("big.bin",)) as file:
        for start in range(0, len(data), 65536):
            file.write(data[start : start + 65536])
    assert file.sha256() == hashlib.sha256(data).hexdigest() and file.transferred == len(data)
    reader = home.open_read(("big.bin",))
    while reader.read(100_000):
        pass
    reader.close()
    assert reader.sha256() == hashlib.sha256(data).hexdigest()


def test_a_resumed_transfer_hashes_the_whole_file(home):
    data = os.urandom(500_000)
    (home.root / "part.bin").write_bytes(data[:200_000])
    with home.open_write(("part.bin",), how="resume") as file:
        file.seek(200_000)
        file.write(data[200_000:])
    assert (file.offset, file.transferred, file.sha256()) == (200_000, 300_000, hashlib.sha256(data).hexdigest())
    reader = home.open_read(("part.bin",), offset=450_000)
    assert reader.read(1_000_000) == data[450_000:]
    reader.close()
    assert reader.sha256() == hashlib.sha256(data).hexdigest()


def test_an_append_hashes_what_was_there_before(home):
    (home.root / "log.txt").write_bytes(b"first\n")
    with home.open_write(("log.txt",), how="append") as file:
        file.write(b"second\n")
    assert file.sha256() == hashlib.sha256(b"first\nsecond\n").hexdigest()
    assert (home.root / "log.txt").read_bytes() == b"first\nsecond\n"


def test_folders_renames_and_deletions(home):
    home.make_folder(("docs",))
    (home.root / "a.txt").write_text("a")
    home.rename(("a.txt",), ("docs", "b.txt"))
    assert [e.name for e in home.entries(("docs",))] == ["b.txt"]
    with pytest.raises(PathRefused, match="into itself"):
        home.rename(("docs",), ("docs", "inner"))
    with pytest.raises(OSError):
        home.remove_folder(("docs",))  # not empty
    home.remove_file(("docs", "b.txt"))
    home.remove_folder(("docs",))
    with pytest.raises(PathRefused):
        home.remove_folder(())
    assert home.entries() == []


def test_uploads_a_stopped_server_left_behind_are_cleared_after_a_day(home, tmp_path):
    staging = home.staging(tmp_path / "files")
    old, fresh = staging / "upload-old", staging / "upload-fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (0, 0))
    assert home.staging(tmp_path / "files") == staging
    assert not old.exists() and fresh.exists()
