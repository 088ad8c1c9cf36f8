"""The API token file: created once 0600 in a 0700 directory, shared by racing starters, and
refused when group or others could read it."""

from __future__ import annotations

import multiprocessing
import os
import stat
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from irisd.errors import StateError
from irisd.shell.token import load_or_create_token, read_token


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_a_private_file_in_a_private_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "api.token"
    token = load_or_create_token(path)
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert token.replace("-", "").replace("_", "").isalnum()
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert path.read_text() == token + "\n"
    assert [p.name for p in path.parent.iterdir()] == ["api.token"]  # no temp file left


def test_later_starts_read_the_same_token(tmp_path: Path) -> None:
    path = tmp_path / "api.token"
    assert load_or_create_token(path) == load_or_create_token(path)


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    load_or_create_token(tmp_path / "api.token")
    assert _mode(tmp_path) == 0o755


def test_an_operator_provided_token_is_used_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "api.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"  provisioned-token-0123456789  \n")
    os.close(fd)
    assert load_or_create_token(path) == "provisioned-token-0123456789"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660], ids=oct)
def test_a_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "api.token"
    load_or_create_token(path)
    path.chmod(mode)
    with pytest.raises(StateError, match=f"open to group or others \\(mode {mode:04o}\\)"):
        load_or_create_token(path)
    assert read_token(path, private=False)  # the CLI may still read what it can


@pytest.mark.parametrize(
    "content", [b"", b"\n", b"short\n", b"has a space in the middle!!\n"], ids=repr
)
def test_a_file_that_holds_no_token_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "api.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(StateError, match="not a token"):
        load_or_create_token(path)


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.token"
    load_or_create_token(real)
    link = tmp_path / "api.token"
    link.symlink_to(real)
    with pytest.raises(StateError, match="token file"):
        load_or_create_token(link)


def test_a_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "api.token").mkdir()
    with pytest.raises(StateError, match="token file"):
        load_or_create_token(tmp_path / "api.token")


def _start(path: str, barrier: Barrier, out: multiprocessing.Queue[str]) -> None:
    barrier.wait()
    out.put(load_or_create_token(Path(path)))


def test_racing_starters_all_get_the_one_token(tmp_path: Path) -> None:
    path = tmp_path / "state" / "api.token"
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(6)
    out: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_start, args=(str(path), barrier, out)) for _ in range(6)]
    for proc in procs:
        proc.start()
    tokens = {out.get(timeout=30) for _ in procs}
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert tokens == {path.read_text().strip()}
    assert [p.name for p in path.parent.iterdir()] == ["api.token"]
