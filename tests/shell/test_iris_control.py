"""The iris runner against real programs: a script standing in for `iris`, never a shell."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from irisd.errors import ControlError
from irisd.shell.iris_control import IrisControl

QLIST = (
    "IRIS^/usr/irissys/^2025.1.0.223.0^running, since Mon Mar 3 09:00:00 2025^iris.cpf^1972^"
    "52773^1972^ok^IRIS^^^/usr/irissys/"
)


def _program(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "iris"
    path.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    path.chmod(0o755)
    return path


async def test_qlist_is_parsed(tmp_path: Path) -> None:
    iris = IrisControl(_program(tmp_path, f"print({QLIST!r})"))
    (status,) = await iris.qlist()
    assert (status.name, status.status, status.superserver_port) == ("IRIS", "running", 1972)


async def test_arguments_are_passed_as_a_list_not_through_a_shell(tmp_path: Path) -> None:
    iris = IrisControl(_program(tmp_path, "print(repr(sys.argv[1:]))"))
    done = await iris.run("merge", "IRIS", "/tmp/a file; rm -rf /")
    assert done.stdout.strip() == repr(["merge", "IRIS", "/tmp/a file; rm -rf /"])


async def test_timeout_kills_and_raises(tmp_path: Path) -> None:
    iris = IrisControl(_program(tmp_path, "time.sleep(30)"), timeout=0.3)
    with pytest.raises(ControlError, match="no answer within"):
        await iris.run("qlist")


async def test_non_zero_exit_raises_with_what_it_said(tmp_path: Path) -> None:
    iris = IrisControl(
        _program(tmp_path, "print('IRIS is already running. Cannot start.'); sys.exit(1)")
    )
    with pytest.raises(ControlError, match="exit 1: IRIS is already running"):
        await iris.run("start", "IRIS")


async def test_unreadable_qlist_raises(tmp_path: Path) -> None:
    iris = IrisControl(_program(tmp_path, "print('not qlist output')"))
    with pytest.raises(ControlError, match="unreadable line"):
        await iris.qlist()


async def test_missing_program_raises(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="cannot run"):
        await IrisControl(tmp_path / "nope").run("qlist")


async def test_a_command_is_confirmed_by_qlist(tmp_path: Path) -> None:
    iris = IrisControl(_program(tmp_path, f"print({QLIST!r}) if sys.argv[1] == 'qlist' else None"))
    with pytest.raises(ControlError, match="expected 'down'"):
        await iris.stop("IRIS")
