"""The `irisd` command line. Subcommands only parse arguments and call into the package;
errors from the one tree in `irisd.errors` become exit codes here and nowhere else.

Exit codes: 0 success; 1 failure; 64 usage; 65 bad data (CPF); 69 API unavailable;
70 internal or control-program failure; 74 state I/O; 77 API token refused; 78 configuration;
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from irisd import __version__
from irisd.errors import IrisdError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="irisd",
        description="Per-host daemon for InterSystems IRIS: tail, classify, publish, remediate.",
        epilog="Exit codes: 0 ok, 1 failure, 64 usage, 65 bad data, 69 API unavailable, "
        "70 internal/control failure, 74 state I/O, 77 API token refused, 78 configuration, "
        "130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"irisd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _registrars():
        register(sub)
    return parser


def _registrars() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    # Each area of the package owns the arguments of its subcommands.
    from irisd.cli_commands import add_commands as core_commands

    out: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
        core_commands
    ]
    try:
        from irisd.emulator.cli import add_commands as emulator_commands
    except ImportError:  # pragma: no cover - the emulator package is always shipped
        return out
    out.append(emulator_commands)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
