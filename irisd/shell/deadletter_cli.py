"""`irisd deadletter list|retry`: what the sinks refused for good, and putting it back.

Both work on the daemon's database directly (SQLite in WAL mode takes a second reader and a
short writer beside the running daemon), so they answer even when the daemon is stopped. A retry
makes the events pending again for the sink that refused them; a running daemon picks them up
within a second, a stopped one at its next start.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from irisd.config import load_settings
from irisd.core.eventjson import event_to_dict
from irisd.errors import StateError, UsageError
from irisd.shell.outbox import DeadLetter
from irisd.shell.store import Store


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "deadletter",
        help="list or retry events a sink refused (dead letters)",
        description="Events a sink refused with a 4xx answer wait in the dead-letter table "
        "until an operator retries them.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show dead letters, oldest first")
    _common(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per dead letter")
    listing.set_defaults(func=list_command)
    retry = actions.add_parser("retry", help="make dead letters pending again")
    _common(retry)
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="dead letter ids")
    retry.add_argument("--all", action="store_true", help="every dead letter (of --sink, if given)")
    retry.set_defaults(func=retry_command)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="configuration file (as for `irisd run`)")
    parser.add_argument("--database", type=Path, help="the database itself (default: from config)")
    parser.add_argument("--sink", help="only this sink's dead letters")


def list_command(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        letters = store.dead_letters(args.sink)
    finally:
        store.close()
    lines = [json.dumps(letter_json(d), ensure_ascii=False) for d in letters]
    print("\n".join(lines) if args.json else render_table(letters))
    return 0


def retry_command(args: argparse.Namespace) -> int:
    if bool(args.all) == bool(args.ids):
        raise UsageError("deadletter retry: name dead letter ids, or --all (not both)")
    store = open_store(args)
    try:
        ids = _chosen(store.dead_letters(args.sink), args.ids, every=args.all)
        count = store.retry_dead_letters(ids) if ids else 0
    finally:
        store.close()
    print(f"{count} dead letter{'s' if count != 1 else ''} back to pending")
    return 0


def _chosen(letters: Sequence[DeadLetter], ids: Sequence[int], *, every: bool) -> list[int]:
    known = {d.id for d in letters}
    if every:
        return sorted(known)
    missing = [i for i in ids if i not in known]
    if missing:
        raise UsageError(f"no such dead letter: {', '.join(map(str, missing))}")
    return list(ids)


def open_store(args: argparse.Namespace) -> Store:
    path: Path = args.database or _configured_database(args.config)
    if not path.is_file():
        raise StateError(f"no irisd database at {path} (has the daemon ever run?)")
    return Store(path)


def _configured_database(config: Path | None) -> Path:
    return load_settings(config).state.database_path


def letter_json(letter: DeadLetter) -> dict[str, object]:
    return {
        "id": letter.id,
        "sink": letter.sink,
        "status": letter.status,
        "body": letter.body,
        "at": _iso(letter.at),
        "event": event_to_dict(letter.event),
    }


def render_table(letters: Sequence[DeadLetter]) -> str:
    if not letters:
        return "no dead letters"
    head = f"{'ID':>6}  {'SINK':<16} {'STATUS':>6}  {'AT':<20}  {'CODE':<28} ANSWER"
    rows = [
        f"{d.id:>6}  {d.sink:<16} {d.status or '-':>6}  {_iso(d.at):<20}  "
        f"{d.event.code:<28} {' '.join(d.body.split())[:60]}"
        for d in letters
    ]
    return "\n".join([head, *rows])


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
