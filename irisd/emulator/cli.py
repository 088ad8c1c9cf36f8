"""Subcommands of the emulator area: `irisd emulator …`, `irisd generate`, `irisd bundle`.

irisd emulator init DIR [--name IRIS] [--superserver-port N] [--web-port N] [--scenario X]
irisd emulator start DIR [--scenario X] [--speed F] [--wait]
irisd emulator stop DIR | status DIR [--json] | force DIR
irisd emulator merge DIR FILE | inject DIR SCENARIO | scenarios [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irisd.errors import UsageError

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def add_commands(sub: Sub) -> None:
    emulator = sub.add_parser("emulator", help="an emulated IRIS instance: init, start, stop …")
    verbs = emulator.add_subparsers(dest="verb", metavar="VERB", required=True)
    _add_init(verbs)
    start = verbs.add_parser("start", help="start the instance (a detached process)")
    start.add_argument("directory", type=Path)
    start.add_argument("--scenario", help="arm this scenario first (see `emulator scenarios`)")
    start.add_argument("--speed", type=float, help="time factor: 60 plays a minute per second")
    start.add_argument("--wait", action="store_true", help="return when the scenario has played")
    start.add_argument("--timeout", type=float, default=120.0)
    start.set_defaults(func=_start)
    for verb, func, text in (("stop", _stop, "graceful stop; returns when the process is gone"),
                             ("force", _force, "kill the instance as `iris force` does"),
                             ("status", _status, "status, scenario and health")):  # fmt: skip
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("directory", type=Path)
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(func=func)
    merge = verbs.add_parser("merge", help="configuration merge (like `iris merge`)")
    merge.add_argument("directory", type=Path)
    merge.add_argument("file", type=Path)
    merge.set_defaults(func=_merge)
    inject = verbs.add_parser("inject", help="switch a running instance to a scenario")
    inject.add_argument("directory", type=Path)
    inject.add_argument("scenario")
    inject.set_defaults(func=_inject)
    listing = verbs.add_parser("scenarios", help="list the scenarios")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_scenarios)
    from irisd.emulator.cli_generate import add_generate_commands

    add_generate_commands(sub)
    from irisd.emulator.cli_bundle import add_bundle_command

    add_bundle_command(sub)


def _add_init(verbs: Sub) -> None:
    init = verbs.add_parser("init", help="lay out a new instance in DIR")
    init.add_argument("directory", type=Path)
    init.add_argument("--name", default="IRIS")
    init.add_argument("--superserver-port", type=int, help="default: a free loopback port")
    init.add_argument("--web-port", type=int, help="default: a free loopback port")
    init.add_argument("--scenario", help="arm this scenario in the new instance")
    init.set_defaults(func=_init)


def _port(flag: str, value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 65535:
        raise UsageError(f"{flag} {value}: must be 1-65535")
    return value


def _known_scenario(name: str | None) -> None:
    from irisd.emulator import scenarios

    if name is not None and scenarios.get(name) is None:
        raise UsageError(f"--scenario {name!r}: unknown; known: {', '.join(scenarios.names())}")


def _init(args: argparse.Namespace) -> int:
    from irisd.emulator import control
    from irisd.emulator.layout import init_instance

    _known_scenario(args.scenario)  # before the layout: a bad flag leaves no instance behind
    paths = init_instance(args.directory, name=args.name,
                          superserver_port=_port("--superserver-port", args.superserver_port),
                          web_port=_port("--web-port", args.web_port))  # fmt: skip
    if args.scenario:
        control.arm(paths.root, args.scenario)
    print(f"initialised {args.name} in {paths.root} (control program: {paths.program})")
    return 0


def _start(args: argparse.Namespace) -> int:
    from irisd.emulator import control

    if args.speed is not None and args.speed <= 0:
        raise UsageError(f"--speed {args.speed}: must be positive")
    if args.timeout <= 0:  # else the instance starts, unwatched, while the command fails
        raise UsageError(f"--timeout {args.timeout}: must be positive")
    _known_scenario(args.scenario)
    started = control.start(args.directory, scenario=args.scenario, speed=args.speed,
                            timeout=args.timeout)  # fmt: skip
    for change in started.armed:
        print(f"armed: {change}")
    print(f"running, pid {started.pid}")
    if args.wait:
        control.wait_scenario(args.directory, timeout=args.timeout)
        print("scenario played")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from irisd.emulator import control

    control.stop(args.directory)
    return 0


def _force(args: argparse.Namespace) -> int:
    from irisd.emulator import control

    control.force(args.directory)
    return 0


def _status(args: argparse.Namespace) -> int:
    from irisd.emulator import control

    state = control.status(args.directory)
    if args.json:
        print(json.dumps(state, indent=2, sort_keys=True))
    else:
        keys = ("name", "status", "pid", "scenario", "scenario_done", "health", "failing")
        print("  ".join(f"{k}={state.get(k)}" for k in keys))
    return 0 if state.get("status") == "running" else 3


def _merge(args: argparse.Namespace) -> int:
    from irisd.emulator import control

    result = control.merge(args.directory, args.file)
    _print(result)
    return 0 if result.get("ok") else 1


def _inject(args: argparse.Namespace) -> int:
    from irisd.emulator import control

    _print(control.inject(args.directory, args.scenario))
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    from irisd.emulator.scenarios import SCENARIOS

    rows = [{"name": s.name, "code": s.code, "summary": s.summary, "root_cause": s.root_cause,
             "fix": s.fix.description} for s in SCENARIOS.values()]  # fmt: skip
    if args.json:
        _print(rows)
    else:
        for row in rows:
            print(f"{row['name']:22} {row['code']:28} {row['summary']}")
    return 0


def _print(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
