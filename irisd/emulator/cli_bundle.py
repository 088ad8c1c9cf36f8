"""`irisd bundle` (registered by irisd.emulator.cli): incident bundles, offline and reproducible.

irisd bundle (--scenario X | --all) --seed N --anchor TIME --out DIR [--threshold 0.70]
             [--variant V | --variants]

Every argument is checked before anything is written; a bad one is one line naming the flag and
exit 64. Bundles land in DIR/<scenario>[-<variant>]/, each written whole or not at all.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from irisd.errors import UsageError

if TYPE_CHECKING:
    from irisd.emulator.bundle import Spec

    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

ANCHOR_EXAMPLE = "2026-01-01T00:00:00Z"


def add_bundle_command(sub: Sub) -> None:
    from irisd.emulator.bundle_variants import VARIANTS

    cmd = sub.add_parser("bundle", help="incident bundles: logs, metrics, host facts, ground truth")
    which = cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--scenario", help="one scenario (see `irisd emulator scenarios`)")
    which.add_argument("--all", action="store_true", help="every scenario, with progress")
    cmd.add_argument("--seed", required=True, help="an integer; same seed and anchor, same bytes")
    cmd.add_argument("--anchor", required=True,
                     help=f"ISO 8601 time of the first entry, e.g. {ANCHOR_EXAMPLE} "
                     "(UTC unless it carries an offset)")  # fmt: skip
    cmd.add_argument("--out", required=True, help="a new or empty directory")
    cmd.add_argument("--threshold", default="0.70", help="pass threshold in ground_truth.json")
    edge = cmd.add_mutually_exclusive_group()
    edge.add_argument("--variant", help=f"an edge case: {', '.join(VARIANTS)}")
    edge.add_argument("--variants", action="store_true", help="each bundle plus all its variants")
    cmd.set_defaults(func=_bundle)


def _bundle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from irisd.emulator import bundle
    from irisd.emulator.bundle_write import Output

    specs = specs_from(args)
    out = Output.prepare(Path(args.out))
    shown = args.all or len(specs) > 1
    try:
        for n, spec in enumerate(specs, 1):
            _progress(shown, f"[{n}/{len(specs)}] {spec.name} ... ")
            skip = bundle.inapplicable(spec)
            if skip:
                _progress(shown, f"skipped: {skip}\n")
                continue
            print(out.write(bundle.build(spec)), flush=True)
            _progress(shown, "ok\n")
    except BaseException:
        _progress(shown, "failed\n")
        out.abandon()  # removes only directories this run created that are still empty
        raise
    return 0


def _progress(shown: bool, text: str) -> None:
    if shown:
        sys.stderr.write(text)
        sys.stderr.flush()


def specs_from(args: argparse.Namespace) -> list[Spec]:
    """Every bundle the arguments ask for, in order; UsageError on the first bad argument."""
    from irisd.emulator import scenarios
    from irisd.emulator.bundle import Spec, inapplicable
    from irisd.emulator.bundle_variants import VARIANTS

    if args.scenario is not None and scenarios.get(args.scenario) is None:
        raise UsageError(f"--scenario {args.scenario!r}: unknown; known: "
                         f"{', '.join(scenarios.names())}")  # fmt: skip
    if args.variant is not None and args.variant not in VARIANTS:
        raise UsageError(f"--variant {args.variant!r}: unknown; known: {', '.join(VARIANTS)}")
    seed, anchor, threshold = (
        _seed(args.seed),
        parse_anchor(args.anchor),
        _threshold(args.threshold),
    )
    names = scenarios.names() if args.all else (args.scenario,)
    variants = (None, *VARIANTS) if args.variants else (args.variant,)
    specs = [Spec(name, seed, anchor, threshold, v) for name in names for v in variants]
    if not args.all and args.variant is not None and (reason := inapplicable(specs[0])):
        raise UsageError(f"--variant {args.variant}: {reason}")
    return specs


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--seed {text!r}: expected an integer") from None


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value <= 1.0:  # also false for nan
        raise UsageError(f"--threshold {text!r}: expected a number above 0 and at most 1")
    return value


def parse_anchor(text: str) -> datetime:
    """An ISO 8601 date-time; without an offset it is UTC. Two-digit log years bound it."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--anchor {text!r}: not an ISO 8601 time; for example "
                         f"{ANCHOR_EXAMPLE}") from None  # fmt: skip
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # the log's resolution, as recorded
    if not 2000 <= at.year <= 2098 or not 2000 <= at.astimezone(UTC).year <= 2098:
        raise UsageError(f"--anchor {text!r}: the year must be 2000-2098 "
                         "(messages.log writes two-digit years)")  # fmt: skip
    return at
