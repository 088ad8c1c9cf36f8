"""`irisd deadletter list|retry` on a real database file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from delivery_kit import make_events

from irisd.errors import StateError, UsageError
from irisd.shell.deadletter_cli import add_commands
from irisd.shell.store import Checkpoint, Store


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="irisd")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """Two sinks; hook refused events 0-2 (400, 422), alerts refused event 3 (413)."""
    path = tmp_path / "irisd.sqlite3"
    store = Store(path)
    store.register_sinks(["hook", "alerts"])
    store.commit_batch(make_events(5), Checkpoint("/log", "/log", 1, 2, "fp", 500))
    hook = [i.seq for i in store.claim("hook", limit=10, max_bytes=1 << 20)]
    store.dead_letter("hook", hook[:2], status=400, body="unknown field\n  'labels'")
    store.dead_letter("hook", hook[2:3], status=422, body="{}")
    store.ack("hook", hook[3:])
    alerts = [i.seq for i in store.claim("alerts", limit=10, max_bytes=1 << 20)]
    store.dead_letter("alerts", alerts[3:4], status=413, body="too large")
    store.ack("alerts", alerts[:3] + alerts[4:])
    store.close()
    return path


def test_list_shows_every_dead_letter_as_a_table(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("deadletter", "list", "--database", str(database)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "SINK", "STATUS", "AT", "CODE", "ANSWER"]
    assert len(lines) == 5
    assert "unknown field 'labels'" in lines[1]  # the answer on one line
    assert lines[4].split()[1:3] == ["alerts", "413"]


def test_list_json_filtered_by_sink(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("deadletter", "list", "--database", str(database), "--sink", "hook", "--json") == 0
    letters = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["sink"], d["status"]) for d in letters] == [
        ("hook", 400),
        ("hook", 400),
        ("hook", 422),
    ]
    assert letters[0]["event"]["event_id"] == f"{0:032x}"
    assert letters[0]["at"].endswith("Z")


def test_retry_by_id_makes_exactly_those_pending_again(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(database)
    first = store.dead_letters("hook")[0]
    store.close()
    assert run("deadletter", "retry", "--database", str(database), str(first.id)) == 0
    assert capsys.readouterr().out.strip() == "1 dead letter back to pending"
    store = Store(database)
    assert [i.event.event_id for i in store.claim("hook", limit=10, max_bytes=1 << 20)] == [
        first.event.event_id
    ]
    assert len(store.dead_letters()) == 3
    store.close()


def test_retry_all_of_one_sink(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("deadletter", "retry", "--database", str(database), "--all", "--sink", "hook") == 0
    assert capsys.readouterr().out.strip() == "3 dead letters back to pending"
    store = Store(database)
    assert [d.sink for d in store.dead_letters()] == ["alerts"]
    store.close()


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["deadletter", "retry"], id="nothing-chosen"),
        pytest.param(["deadletter", "retry", "1", "--all"], id="ids-and-all"),
        pytest.param(["deadletter", "retry", "999"], id="unknown-id"),
    ],
)
def test_retry_refuses_unclear_requests(database: Path, argv: list[str]) -> None:
    with pytest.raises(UsageError):
        run(*argv, "--database", str(database))


def test_a_missing_database_is_a_state_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite3"
    with pytest.raises(StateError, match="no irisd database"):
        run("deadletter", "list", "--database", str(missing))
    assert not missing.exists()


def test_the_database_is_found_through_the_configuration(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "irisd.toml"
    config.write_text(f'[state]\ndir = "{database.parent}"\ndatabase = "{database.name}"\n')
    assert run("deadletter", "list", "--config", str(config), "--json") == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
