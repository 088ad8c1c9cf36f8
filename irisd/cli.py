"""The `irisd` command line. Subcommands only parse arguments and call into the package;
errors from the one tree in `irisd.errors` become exit codes here and nowhere else.

Exit codes: 0 success; 1 failure; 64 usage; 65 bad data (CPF); 69 API unavailable;
70 internal or control-program failure; 74 state I/O; 77 API token refused; 78 configuration;
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from irisd import __version__
from irisd.errors import IrisdError

Handler = Callable[[argparse.Namespace], int]


# The command words each area registers. `main` imports only the area that owns the command it
# runs, so a light command (`generate`) never pays for the API client, pydantic or aiohttp; with
# no command word (`--help`) or one not listed here, every area registers, so a stale entry costs
# speed, never a command. tests/emulator/test_generate.py checks this table against the areas.
AREAS: dict[str, tuple[str, ...]] = {
    "irisd.cli_commands": ("run", "classify", "demo"),
    "irisd.api.commands": ("status", "events"),
    "irisd.shell.deadletter_cli": ("deadletter",),
    "irisd.emulator.cli": ("emulator", "generate", "bundle"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of the area that owns `command`."""
    parser = argparse.ArgumentParser(
        prog="irisd",
        description="Per-host daemon for InterSystems IRIS: tail, classify, publish, remediate.",
        epilog="Exit codes: 0 ok, 1 failure, 64 usage, 65 bad data, 69 API unavailable, "
        "70 internal/control failure, 74 state I/O, 77 API token refused, 78 configuration, "
        "130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"irisd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _registrars(command):
        register(sub)
    return parser


def _registrars(
    command: str | None,
) -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    # Each area of the package owns the arguments of its subcommands.
    owners = [area for area, words in AREAS.items() if command in words] or list(AREAS)
    return [importlib.import_module(area).add_commands for area in owners]


def _command(argv: Sequence[str]) -> str | None:
    return argv[0] if argv and not argv[0].startswith("-") else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except IrisdError as exc:
        print(f"irisd: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
