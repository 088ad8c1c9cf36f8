"""`irisd generate` (registered by irisd.emulator.cli). `irisd bundle` is not built yet."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from irisd.errors import UsageError

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def add_generate_commands(sub: Sub) -> None:
    gen = sub.add_parser("generate", help="realistic messages.log entries, offline")
    gen.add_argument("--category", help="taxonomy subsystem, e.g. config, memory, lock")
    gen.add_argument("--count", type=int, default=10)
    gen.add_argument("--severity", default="0-3", help="a range like 2-3, or one digit")
    gen.add_argument("--output", choices=("log", "json"), default="log")
    gen.add_argument("--seed", type=int, default=0)
    gen.set_defaults(func=_generate)


def _severity(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        pair = (int(low), int(high or low))
    except ValueError:
        raise UsageError(f"--severity {text!r}: expected N or N-M with 0 <= N <= M <= 3") from None
    if not 0 <= pair[0] <= pair[1] <= 3:
        raise UsageError(f"--severity {text!r}: expected N or N-M with 0 <= N <= M <= 3")
    return pair


def _generate(args: argparse.Namespace) -> int:
    from irisd.emulator import generate

    low, high = _severity(args.severity)
    if args.count < 0:
        raise UsageError(f"--count {args.count}: must be zero or more")
    if args.category and args.category not in generate.categories():
        known = ", ".join(generate.categories())
        raise UsageError(f"--category {args.category!r}: unknown; known: {known}")
    try:
        entries = generate.generate(category=args.category, count=args.count, low=low,
                                    high=high, seed=args.seed)  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.output == "json":
        sys.stdout.write("".join(json.dumps(e.as_json()) + "\n" for e in entries))
    else:
        sys.stdout.write(generate.render_log(entries))
    return 0
