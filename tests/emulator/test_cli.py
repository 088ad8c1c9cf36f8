"""`irisd emulator init|start` with a bad argument: one line naming the flag or the path, a
non-zero exit, and nothing laid out, armed or started."""

from __future__ import annotations

from pathlib import Path

import pytest

from irisd.cli import main
from irisd.emulator import files
from irisd.emulator.layout import init_instance


def _fails(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and the one line on stderr of a failing command."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert err.count("\n") == 1, err
    return code, out, err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--scenario", "no_such"], "--scenario 'no_such': unknown"),
        (["--web-port", "0"], "--web-port 0: must be 1-65535"),
        (["--superserver-port", "70000"], "--superserver-port 70000: must be 1-65535"),
    ],
    ids=["scenario", "web-port", "superserver-port"],
)
def test_init_with_a_bad_flag_names_it_and_lays_out_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], named: str
) -> None:
    code, _, err = _fails(capsys, "emulator", "init", str(tmp_path / "iris"), *flags)
    assert code == 64
    assert named in err
    assert not (tmp_path / "iris").exists()


def test_init_where_no_directory_can_be_made_says_so_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    code, _, err = _fails(capsys, "emulator", "init", str(tmp_path / "file"))
    assert code == 70
    assert f"{tmp_path / 'file'}: not a directory" in err
    code, _, err = _fails(capsys, "emulator", "init", str(tmp_path / "file/iris"))
    assert code == 70
    assert "cannot lay out an instance" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--timeout", "0"], "--timeout 0.0: must be positive"),
        (["--speed", "-1"], "--speed -1.0: must be positive"),
        (["--scenario", "no_such"], "--scenario 'no_such': unknown"),
    ],
    ids=["timeout", "speed", "scenario"],
)
def test_start_with_a_bad_flag_names_it_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], named: str
) -> None:
    paths = init_instance(tmp_path / "iris")
    before = (paths.cpf.read_bytes(), files.load_state(paths))
    code, _, err = _fails(capsys, "emulator", "start", str(paths.root), *flags)
    assert code == 64
    assert named in err
    assert files.running_pid(paths) is None
    assert (paths.cpf.read_bytes(), files.load_state(paths)) == before


@pytest.mark.parametrize("where", ["missing/report.json", "."], ids=["no-directory", "a-directory"])
def test_generate_with_an_unusable_report_path_fails_before_writing_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    report = tmp_path / where
    code, out, err = _fails(capsys, "generate", "--count", "3", "--report", str(report))
    assert code == 64
    assert f"--report {report}:" in err
    assert out == ""


@pytest.mark.parametrize("budget", ["0", "-3"])
def test_generate_llm_with_no_request_budget_names_the_flag(
    capsys: pytest.CaptureFixture[str], budget: str
) -> None:
    code, out, err = _fails(capsys, "generate", "--llm", "--llm-max-requests", budget)
    assert code == 64
    assert f"--llm-max-requests {budget}: must be 1 or more" in err
    assert out == ""
