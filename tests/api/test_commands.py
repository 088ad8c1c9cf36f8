"""`irisd status` and `irisd events` against a real server, as an operator runs them."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from api_fakes import NOW, TOKEN, FakeServices, sample_rows

from irisd.api.app import make_app
from irisd.api.commands import _call, add_commands, render_events, render_status
from irisd.api.server import ApiServer, start_server
from irisd.errors import ApiError, AuthError, ConfigError, UsageError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="irisd")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "api.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, TOKEN.encode() + b"\n")
    os.close(fd)
    return path


@pytest.fixture
def short_dir(tmp_path: Path) -> Iterator[Path]:
    short = Path("/tmp") / f"irisd-cmd-{tmp_path.name[-20:]}"
    short.mkdir(exist_ok=True)
    yield short
    for child in short.iterdir():
        child.unlink()
    short.rmdir()


@pytest.fixture
async def server(short_dir: Path) -> AsyncIterator[ApiServer]:
    app = make_app(FakeServices(sample_rows()), token=TOKEN, clock=lambda: NOW)
    async with await start_server(app, short_dir / "api.sock") as running:
        yield running


async def _run(argv: list[str]) -> int:
    # The command runs its own event loop (asyncio.run), so it gets a thread of its own while
    # the server keeps serving on the test's loop.
    args = _parser().parse_args(argv)
    result: int = await asyncio.to_thread(args.func, args)
    return result


def _flags(server: ApiServer, token_file: Path) -> list[str]:
    return ["--listen", server.listen, "--token-file", str(token_file)]


async def test_events_json_is_the_api_page(
    server: ApiServer, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["events", "--json", "--code", "lock.*", "--limit", "2", *_flags(server, token_file)]
    assert await _run(argv) == 0
    page = json.loads(capsys.readouterr().out)
    assert [e["event_id"] for e in page["events"]] == ["ev0007", "ev0004"]
    assert page["next"]


async def test_events_table_and_a_hint_for_the_next_page(
    server: ApiServer, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["events", "--min-severity", "severe", "--limit", "2", *_flags(server, token_file)]
    assert await _run(argv) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "SEV", "CODE", "PID", "MESSAGE"]
    assert "journal.error" in lines[1]
    assert "message 10 for journal.error" in lines[1]
    assert "second line" not in out  # one line per event
    assert "writedaemon.died" in lines[2]
    assert len(lines) == 3
    assert err.startswith("more: irisd events ... --after ")


async def test_every_filter_flag_reaches_the_api(
    server: ApiServer, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "events", "--json", "--code", "lock.*", "--code", "journal.*", "--severity", "0",
        "--severity", "2", "--since", "2h", "--until", "10m", *_flags(server, token_file),
    ]  # fmt: skip
    assert await _run(argv) == 0
    page = json.loads(capsys.readouterr().out)
    assert [e["event_id"] for e in page["events"]] == ["ev0007", "ev0005", "ev0004", "ev0003"]


async def test_a_bad_flag_is_a_usage_error_before_any_connection(
    short_dir: Path, token_file: Path
) -> None:
    nowhere = ["--listen", f"unix:{short_dir}/none.sock", "--token-file", str(token_file)]
    with pytest.raises(UsageError, match=r"^--min-severity: Input should be") as caught:
        await _run(["events", "--min-severity", "loud", *nowhere])
    assert caught.value.exit_code == 64
    with pytest.raises(UsageError, match=r"^--since: not ISO 8601"):
        await _run(["events", "--since", "yesterday", *nowhere])


async def test_a_parameter_the_server_refuses_is_a_usage_error(
    server: ApiServer, token_file: Path
) -> None:
    # A client older or newer than the daemon may let through what the server refuses.
    args = _parser().parse_args(["events", *_flags(server, token_file)])
    ask = _call(args, lambda api: api.events([("verbose", "1")]))
    with pytest.raises(UsageError, match="400: verbose: unknown parameter"):
        await asyncio.to_thread(asyncio.run, ask)


async def test_status_human_and_json(
    server: ApiServer, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["status", *_flags(server, token_file)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "state: tailing",
        "since: 2026-03-01T12:00:00.000Z",
        "tail:",
        "  lag_bytes: 0",
        "  offset: 1234",
    ]
    assert await _run(["status", "--json", *_flags(server, token_file)]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "tailing"


async def test_address_and_token_come_from_the_config(
    server: ApiServer, token_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "irisd.toml"
    config.write_text(f'[api]\nlisten = "{server.listen}"\ntoken_file = "{token_file}"\n')
    assert await _run(["status", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "tailing"


async def test_a_bad_config_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "irisd.toml"
    config.write_text('[api]\nlisten = "nowhere"\n')
    with pytest.raises(ConfigError, match="listen"):
        await _run(["status", "--config", str(config)])


async def test_a_wrong_token_is_auth_error(server: ApiServer, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("x" * 40)
    with pytest.raises(AuthError):
        await _run(["status", "--listen", server.listen, "--token-file", str(wrong)])


async def test_no_token_file_says_where_it_looked(server: ApiServer, tmp_path: Path) -> None:
    missing = tmp_path / "none.token"
    with pytest.raises(ApiError, match=f"no API token at {missing}"):
        await _run(["status", "--listen", server.listen, "--token-file", str(missing)])


async def test_a_bad_listen_flag_is_a_usage_error(token_file: Path) -> None:
    with pytest.raises(UsageError, match="--listen"):
        await _run(["status", "--listen", "nowhere", "--token-file", str(token_file)])


async def test_no_daemon_is_api_error_exit_69(short_dir: Path, token_file: Path) -> None:
    argv = ["status", "--listen", f"unix:{short_dir}/none.sock", "--token-file", str(token_file)]
    with pytest.raises(ApiError, match="cannot reach") as caught:
        await _run(argv)
    assert caught.value.exit_code == 69


def test_table_cuts_lines_to_the_terminal_and_marks_repeats() -> None:
    row = {
        "timestamp": None,
        "severity_name": "severe",
        "code": "lock.table_full",
        "pid": None,
        "message": "Lock table full " + "x" * 200,
        "repeat": 3,
    }
    table = render_events([row], width=60)
    assert all(len(line) <= 60 for line in table.splitlines())
    assert render_events([{**row, "message": "short"}], width=None).endswith("short (x3)")
    assert render_events([], width=80) == "no events"


def test_status_renders_booleans_nones_and_empty_sections_plainly() -> None:
    status = {"full": False, "sinks": {}, "oldest": None, "names": ["a", "b"]}
    assert render_status(status) == 'full: false\nsinks: -\noldest: -\nnames: ["a", "b"]'
