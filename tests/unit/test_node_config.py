"""Node configuration (joerl/node/config.py): the cookie file's checks, the
creation and incarnation id of a starting node.

The cookie file is refused, with a clear error, when group or others may
access it or when it is not a regular file (as Erlang refuses
``~/.erlang.cookie``); a missing one is created with mode 0400; a missing or
unwritable home gives a clear error instead of a bare ``FileNotFoundError``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from joerl.errors import DistributionError
from joerl.node.config import COOKIE_ENV, CookieFileError, choose_creation, load_cookie, new_incarnation


@pytest.fixture(autouse=True)
def no_cookie_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(COOKIE_ENV, raising=False)


def write(path: Path, content: bytes, mode: int) -> Path:
    path.write_bytes(content)
    path.chmod(mode)
    return path


# -- the cookie ---------------------------------------------------------------------


def test_argument_and_environment_come_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unsafe = write(tmp_path / "c", b"file", 0o644)
    assert load_cookie("arg", str(unsafe)) == b"arg"
    monkeypatch.setenv(COOKIE_ENV, "env")
    assert load_cookie(None, str(unsafe)) == b"env"
    with pytest.raises(ValueError, match="empty"):
        load_cookie(b"")


@pytest.mark.parametrize("mode", [0o400, 0o600, 0o700])
def test_owner_only_file_is_read(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "c", b"  secret\n", mode)
    assert load_cookie(path=str(path)) == b"secret"


@pytest.mark.parametrize("mode", [0o440, 0o404, 0o640, 0o604, 0o644, 0o666, 0o620, 0o602, 0o410, 0o401])
def test_file_that_group_or_others_may_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "c", b"secret", mode)
    with pytest.raises(CookieFileError, match=f"mode {mode:04o} lets group or others access it") as exc:
        load_cookie(path=str(path))
    assert exc.value.path == str(path) and "chmod 400" in str(exc.value)
    assert isinstance(exc.value, DistributionError) and isinstance(exc.value, ValueError)


def test_symlink_to_another_file_is_refused(tmp_path: Path) -> None:
    """A link to any file would make that file's content the cookie."""
    target = write(tmp_path / "other", b"not-a-cookie", 0o400)
    link = tmp_path / "c"
    link.symlink_to(target)
    with pytest.raises(CookieFileError, match="symbolic link"):
        load_cookie(path=str(link))
    dangling = tmp_path / "d"
    dangling.symlink_to(tmp_path / "missing")
    with pytest.raises(CookieFileError, match="symbolic link"):
        load_cookie(path=str(dangling))
    assert not (tmp_path / "missing").exists(), "nothing created through the link"


def test_directory_and_fifo_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(CookieFileError, match="not a regular file|cannot be read"):
        load_cookie(path=str(folder))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(CookieFileError, match="not a regular file"):
        load_cookie(path=str(fifo))  # (and does not block waiting for a writer)


def test_empty_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    empty = write(tmp_path / "e", b" \n", 0o400)
    with pytest.raises(CookieFileError, match="is empty"):
        load_cookie(path=str(empty))
    if os.geteuid() != 0:  # root reads anything
        locked = write(tmp_path / "l", b"secret", 0o000)
        with pytest.raises(CookieFileError, match="cannot be read"):
            load_cookie(path=str(locked))


def test_missing_file_is_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "c"
    value = load_cookie(path=str(path))
    assert len(value) >= 24 and path.read_bytes() == value
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert load_cookie(path=str(path)) == value


def test_missing_directory_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CookieFileError, match="is missing and cannot be created") as exc:
        load_cookie(path=str(tmp_path / "no-such-home" / ".joerl.cookie"))
    assert not isinstance(exc.value, FileNotFoundError)


def test_unwritable_home_gives_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    home = tmp_path / "home"
    home.mkdir(mode=0o500)
    try:
        with pytest.raises(CookieFileError, match="cannot be created"):
            load_cookie(path=str(home / ".joerl.cookie"))
    finally:
        home.chmod(0o700)


def test_default_path_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    value = load_cookie()
    assert (tmp_path / ".joerl.cookie").read_bytes() == value
    (tmp_path / ".joerl.cookie").chmod(0o644)
    with pytest.raises(CookieFileError, match=r"\.joerl\.cookie: mode 0644"):
        load_cookie()


def test_no_home_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(os.path, "expanduser", lambda p: p)  # no passwd entry either
    with pytest.raises(CookieFileError, match="no home directory"):
        load_cookie()


# -- creation and incarnation ------------------------------------------------------


def test_creation_is_random_nonzero_32_bit_never_the_port_mappers() -> None:
    values = iter([0, 7, 7, 2**32 + 5])
    assert choose_creation(7, randbits=lambda n: next(values)) == 5  # 0 and 7 skipped, masked to 32 bits
    seen = {choose_creation(1234) for _ in range(200)}
    assert len(seen) == 200 and all(1 <= c <= 2**32 - 1 and c != 1234 for c in seen)


def test_same_second_restarts_get_different_creations() -> None:
    """What a fresh port mapper gives two incarnations within one second is
    the same number; the node's own choice is not."""
    registered = 1_700_000_001  # max(4, now + 1), twice
    assert choose_creation(registered) != choose_creation(registered)


def test_incarnation_is_random_nonzero_64_bit() -> None:
    values = iter([0, 2**64 + 9])
    assert new_incarnation(randbits=lambda n: next(values)) == 9
    seen = {new_incarnation() for _ in range(200)}
    assert len(seen) == 200 and all(1 <= v < 2**64 for v in seen)
