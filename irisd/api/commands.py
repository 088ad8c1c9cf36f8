"""`irisd status` and `irisd events`: the CLI's view of a running daemon, through its local API.

Where the daemon listens and where its token is come from `--listen` / `--token-file`, else from
the configuration (`[api] listen` and `token_file`, read with `--config` or the usual search).
Filters are passed to the API as given: the server validates them, and a parameter it refuses
becomes a usage error (exit 64) naming it. Output is a table for people, `--json` for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from irisd.api.client import DEFAULT_TIMEOUT, ApiClient
from irisd.api.params import ParamError, parse_event_params
from irisd.config import Address, load_settings, parse_listen
from irisd.errors import ApiError, UsageError
from irisd.shell.token import read_token

T = TypeVar("T")
EVENT_FLAGS = ("code", "min_severity", "severity", "since", "until", "limit", "after")


EPILOG = (
    "Exit codes: 0 ok, 64 a filter the API refused, 69 API unreachable or failed, "
    "74 token file unreadable, 77 token refused, 78 configuration invalid."
)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser(
        "status",
        help="what the running daemon is doing",
        description="Ask the running daemon what it is doing (GET /status).",
        epilog=EPILOG,
    )
    _connection_flags(status)
    status.set_defaults(func=run_status)
    events = sub.add_parser(
        "events",
        help="recent events from the running daemon",
        description="Recent classified events from the running daemon, newest first "
        "(GET /events). Filters combine: every one given must hold.",
        epilog=EPILOG,
    )
    _event_flags(events)
    _connection_flags(events)
    events.set_defaults(func=run_events)


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--config", type=Path, metavar="FILE", help="irisd.toml to read [api] from")
    group.add_argument(
        "--listen", metavar="ADDR", help="HOST:PORT or unix:/path (default: [api] listen)"
    )
    group.add_argument("--token-file", type=Path, metavar="FILE", help="default: [api] token_file")
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="seconds (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON as is")


def _event_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--code",
        action="append",
        metavar="CODE",
        help="exact code or prefix (lock.*); repeat for any of several",
    )
    group.add_argument(
        "--min-severity",
        metavar="SEV",
        help="at least this severe: 0-3 or info, warning, severe, fatal",
    )
    group.add_argument(
        "--severity", action="append", metavar="SEV", help="exactly this severity; may repeat"
    )
    group.add_argument(
        "--since", metavar="TIME", help="ISO 8601 with zone, or relative: 15m, 2h, 1d"
    )
    group.add_argument("--until", metavar="TIME", help="ISO 8601 with zone, or relative")
    group.add_argument("--limit", metavar="N", help="events per page, 1-1000 (default 100)")
    group.add_argument("--after", metavar="CURSOR", help="the cursor printed after a previous page")


def run_status(args: argparse.Namespace) -> int:
    result = asyncio.run(_call(args, lambda api: api.status()))
    print(_as_json(result) if args.json else render_status(result))
    return 0


def run_events(args: argparse.Namespace) -> int:
    params = event_params(args)
    check_params(params)
    page = asyncio.run(_call(args, lambda api: api.events(params)))
    if args.json:
        print(_as_json(page))
        return 0
    rows = page.get("events")
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    print(render_events(rows if isinstance(rows, list) else [], width=width))
    if page.get("next"):
        print(f"more: irisd events ... --after {page['next']}", file=sys.stderr)
    return 0


def event_params(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The query string for `GET /events` from the flags that were given."""
    params: list[tuple[str, str]] = []
    for name in EVENT_FLAGS:
        value = getattr(args, name)
        values = value if isinstance(value, list) else [] if value is None else [value]
        params.extend((name, str(v)) for v in values)
    return params


def check_params(params: list[tuple[str, str]]) -> None:
    """Refuse a bad flag before any connection, with the server's own model and words."""
    try:
        parse_event_params(params, now=datetime.now(UTC))
    except ParamError as exc:
        raise UsageError(f"--{exc.field.replace('_', '-')}: {exc.reason}") from None


async def _call(args: argparse.Namespace, ask: Callable[[ApiClient], Awaitable[T]]) -> T:
    address, token = endpoint(args)
    try:
        async with ApiClient(address, token, timeout=args.timeout) as api:
            return await ask(api)
    except ApiError as exc:
        if exc.status == 400:  # a flag this client let through but the server refused
            raise UsageError(str(exc)) from None
        raise


def endpoint(args: argparse.Namespace) -> tuple[Address, str]:
    """The API's address and token, from the flags or else the configuration."""
    listen: str | None = args.listen
    token_file: Path | None = args.token_file
    if listen is None or token_file is None:
        settings = load_settings(args.config)
        listen = listen or settings.api.listen
        token_file = token_file or settings.api.token_file
    try:
        address = parse_listen(listen)
    except ValueError as exc:
        raise UsageError(f"--listen {listen}: {exc}") from None
    return address, _token(token_file)


def _token(path: Path) -> str:
    try:
        return read_token(path, private=False)
    except FileNotFoundError:
        raise ApiError(
            f"no API token at {path}: is irisd running here? (--token-file, [api] token_file)"
        ) from None


def render_status(status: Mapping[str, object], indent: str = "") -> str:
    lines: list[str] = []
    for key, value in status.items():
        if isinstance(value, Mapping) and value:
            lines.append(f"{indent}{key}:")
            lines.append(render_status(value, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {_scalar(value)}")
    return "\n".join(line for line in lines if line)


def render_events(rows: Sequence[object], *, width: int | None) -> str:
    """A table, local time, one line per event (the message's first line, cut to `width`)."""
    events = [row for row in rows if isinstance(row, Mapping)]
    if not events:
        return "no events"
    code_w = min(32, max(4, *(len(str(e.get("code"))) for e in events)))
    out = [f"{'TIME':<19}  {'SEV':<7}  {'CODE':<{code_w}}  {'PID':>7}  MESSAGE"]
    out += [_event_line(event, code_w) for event in events]
    return "\n".join(line[:width] for line in out) if width else "\n".join(out)


def _event_line(event: Mapping[str, object], code_w: int) -> str:
    message = str(event.get("message") or "").partition("\n")[0]
    repeat = event.get("repeat")
    if isinstance(repeat, int) and repeat > 1:
        message += f" (x{repeat})"
    pid = event.get("pid")
    return (
        f"{_local_time(event.get('timestamp')):<19}  {event.get('severity_name', '')!s:<7}  "
        f"{event.get('code', '')!s:<{code_w}}  {'-' if pid is None else pid!s:>7}  {message}"
    )


def _local_time(stamp: object) -> str:
    if not isinstance(stamp, str):
        return "-"
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping) and not value:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return "-" if value is None else str(value)


def _as_json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
