"""Subcommands of the daemon itself: `run`, `classify`, `demo`. (`status` and `events` live in
`irisd.api.commands`, `deadletter` in `irisd.shell.deadletter_cli`.)"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import tzinfo
from pathlib import Path

from irisd.errors import UsageError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="run the daemon (as systemd starts it)",
        description="Tail messages.log, classify, store, publish; serve the local API.",
    )
    run.add_argument(
        "--config",
        type=Path,
        help="configuration file (default: $IRISD_CONFIG, "
        "$CONFIGURATION_DIRECTORY/irisd.toml, /etc/irisd/irisd.toml)",
    )
    run.set_defaults(func=_run)

    classify = sub.add_parser(
        "classify",
        help="parse and classify log files offline",
        description="Parse and classify messages.log files (or - for stdin) without a daemon. "
        "Default: one line per entry; --json: one JSON object per entry; --summary: one JSON "
        "document of counts. Exit 0, or 64 when a file cannot be read.",
    )
    classify.add_argument("files", nargs="+", metavar="FILE")
    mode = classify.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="one JSON object per entry")
    mode.add_argument("--summary", action="store_true", help="counts only, as one JSON document")
    classify.add_argument(
        "--timezone", default="", help="IANA zone of the log's timestamps (default: this host's)"
    )
    classify.add_argument("--rules-dir", type=Path, help="extra operator rule files (*.toml)")
    classify.set_defaults(func=_classify)

    demo = sub.add_parser(
        "demo",
        help="run the daemon against an emulated instance, end to end",
        description="Create an emulated IRIS instance in a scratch directory, run irisd against "
        "it while a failure scenario plays, deliver the events to a local webhook receiver (and "
        "to Alertmanager when it is installed), and summarise what irisd detected and delivered. "
        "Exit 0, or 1 when the log was not caught up or an event was not delivered.",
    )
    demo.add_argument(
        "--scenario",
        default="lock_table_full",
        help="scenario to play (see `irisd emulator scenarios`)",
    )
    demo.add_argument("--speed", type=float, default=20.0, help="time acceleration of the emulator")
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    demo.add_argument("--keep", action="store_true", help="keep the scratch directory")
    demo.add_argument(
        "--timeout", type=float, default=120.0, help="give up after this many seconds"
    )
    demo.set_defaults(func=_demo)


def _run(args: argparse.Namespace) -> int:
    from irisd.config import load_settings
    from irisd.daemon import run

    settings = load_settings(args.config)
    return run(settings, config_path=args.config)


def _classify(args: argparse.Namespace) -> int:
    from irisd.offline import classify_files
    from irisd.shell import gctune

    zone = _zone(args.timezone)
    gctune.settle()  # start-up is over: see irisd.shell.gctune
    out = sys.stdout
    summary = classify_files(
        args.files,
        out,
        zone=zone,
        rules_dir=args.rules_dir,
        mode="summary" if args.summary else "json" if args.json else "text",
    )
    if args.summary:
        out.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return 0


def _zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfoNotFoundError

    from irisd.shell.zone import host_zone

    try:
        return host_zone(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"--timezone: unknown zone {name!r}") from exc


def _demo(args: argparse.Namespace) -> int:
    from irisd.demo import run_demo

    return run_demo(
        scenario=args.scenario,
        speed=args.speed,
        as_json=args.json,
        keep=args.keep,
        timeout=args.timeout,
    )
