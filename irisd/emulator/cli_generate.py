"""`irisd generate` (registered by irisd.emulator.cli).

The template path (no flags beyond the filters) is deterministic, offline, and imports nothing
heavy: this module stays on argparse and the standard library, and `--llm` / `--publish` load
their machinery (openai, pydantic, aiohttp) only when asked for.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irisd.errors import UsageError

if TYPE_CHECKING:
    from irisd.config import Settings
    from irisd.emulator.generate import Generated

    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def add_generate_commands(sub: Sub) -> None:
    gen = sub.add_parser(
        "generate",
        help="realistic messages.log entries (offline, or from a model with --llm)",
        description="Entries by category and severity: sequential timestamps, stable pids, every "
        "line valid for irisd's parser. Exit 0; 1 when --llm fell short of --count or --publish "
        "left events undelivered; 64 bad arguments; 69 model endpoint failed; 78 configuration.",
    )
    gen.add_argument("--category", help="taxonomy subsystem, e.g. config, memory, lock")
    gen.add_argument("--count", type=int, default=10)
    gen.add_argument("--severity", default="0-3", help="a range like 2-3, or one digit")
    gen.add_argument("--output", choices=("log", "json"), default="log")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--report", type=Path, metavar="FILE", help="write the run's report (JSON)")
    gen.add_argument("--config", type=Path, help="configuration file ([llm], [[sinks]])")
    model = gen.add_argument_group("a language model (--llm)")
    model.add_argument("--llm", action="store_true", help="ask an OpenAI-compatible model")
    model.add_argument("--llm-base-url", help="default: IRISD_LLM_BASE_URL, [llm] base_url")
    model.add_argument("--llm-model", help="default: IRISD_LLM_MODEL, [llm] model")
    model.add_argument("--temperature", type=float, help="default: [llm] temperature, 0.7")
    model.add_argument("--llm-max-requests", type=int, help="request budget (default: scaled)")
    model.add_argument("--llm-examples", type=Path, metavar="DIR", help="few-shot *.log files")
    publish = gen.add_argument_group("delivery (--publish)")
    publish.add_argument("--publish", action="store_true", help="send through the config's sinks")
    publish.add_argument("--publish-timeout", type=float, default=30.0, metavar="S",
                         help="give up on what is not delivered after S seconds (default 30)")  # fmt: skip
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
    low, high = _severity(args.severity)
    if args.count < 0:
        raise UsageError(f"--count {args.count}: must be zero or more")
    if args.report:
        _check_report(args.report)  # before any entry is written or published
    summary: dict[str, Any] = {"source": "llm" if args.llm else "template"}
    settings = _publish_settings(args)  # a bad configuration stops the run before any output
    if args.llm:
        entries, ok = _from_model(args, low, high, summary)
    else:
        entries, ok = _from_templates(args, low, high), True
    summary["lines"] = len(entries)
    _write(entries, args.output)
    if settings is not None:
        ok = _publish(args, settings, entries, summary) and ok
    if args.output == "json" and (args.llm or args.publish):
        sys.stdout.write(json.dumps({"summary": summary}) + "\n")
    if args.report:
        _write_report(args.report, summary)
    return 0 if ok else 1


def _from_templates(args: argparse.Namespace, low: int, high: int) -> list[Generated]:
    from irisd.emulator import generate

    if args.category and args.category not in generate.categories():
        known = ", ".join(generate.categories())
        raise UsageError(f"--category {args.category!r}: unknown; known: {known}")
    try:
        return generate.generate(category=args.category, count=args.count, low=low, high=high,
                                 seed=args.seed)  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _from_model(
    args: argparse.Namespace, low: int, high: int, summary: dict[str, Any]
) -> tuple[list[Generated], bool]:
    from irisd.emulator import llm, llm_client
    from irisd.rules import default_classifier

    known = llm.subsystems(default_classifier())
    if args.category and args.category not in known:
        raise UsageError(f"--category {args.category!r}: unknown; known: {', '.join(known)}")
    if args.temperature is not None and not 0 <= args.temperature <= 2:
        raise UsageError(f"--temperature {args.temperature}: must be 0-2")
    if args.llm_max_requests is not None and args.llm_max_requests < 1:
        raise UsageError(f"--llm-max-requests {args.llm_max_requests}: must be 1 or more")
    budget = args.llm_max_requests or llm_client.default_max_requests(args.count)
    point = llm_client.endpoint(base_url=args.llm_base_url, model=args.llm_model,
                                temperature=args.temperature, config=args.config)  # fmt: skip
    session = llm_client.Session(llm.Ask(args.category, low, high), args.count, args.seed,
                                 budget, args.llm_examples)  # fmt: skip
    entries, report = llm_client.generate(point, session)
    summary["llm"] = report.as_dict()
    for line in report.text():
        print(line, file=sys.stderr)
    if len(entries) < args.count:
        print(f"irisd: generate --llm: {len(entries)} of {args.count} valid lines after "
              f"{len(report.requests)} requests", file=sys.stderr)  # fmt: skip
        return entries, False
    return entries, True


def _publish_settings(args: argparse.Namespace) -> Settings | None:
    if not args.publish:
        return None
    if args.publish_timeout <= 0:
        raise UsageError(f"--publish-timeout {args.publish_timeout}: must be positive")
    from irisd.emulator import publish

    return publish.load(args.config)


def _publish(
    args: argparse.Namespace, settings: Settings, entries: list[Generated], summary: dict[str, Any]
) -> bool:
    from irisd.emulator import generate, publish

    report = publish.publish(generate.render_log(entries), settings, seed=args.seed,
                             timeout=args.publish_timeout)  # fmt: skip
    summary["publish"] = report.as_dict()
    for line in report.text():
        print(line, file=sys.stderr)
    return report.ok


def _write(entries: list[Generated], output: str) -> None:
    if output == "json":
        sys.stdout.write("".join(json.dumps(e.as_json()) + "\n" for e in entries))
    else:
        from irisd.emulator.generate import render_log

        sys.stdout.write(render_log(entries))


def _check_report(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"--report {path}: is a directory")
    if not path.parent.is_dir():
        raise UsageError(f"--report {path}: no directory {path.parent}")


def _write_report(path: Path, summary: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--report {path}: {exc.strerror}") from None
