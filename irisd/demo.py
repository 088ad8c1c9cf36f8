"""`irisd demo`: an emulated instance, the real daemon against it, a scenario played, a summary.

Everything is a real process: the emulated instance (its own control process writing
messages.log), and `irisd run` as a child with a configuration written into a scratch directory
(API on a unix socket there). The demo waits until the scenario has played and the daemon has read
the log to its end, asks the daemon's API what it detected, and stops both, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from irisd.api.client import ApiClient
from irisd.core.model import SEVERITY_NAMES
from irisd.demo_delivery import delivery_report, render_delivered, sinks_toml, start_sinks
from irisd.errors import IrisdError, UsageError
from irisd.shell.token import read_token

INSTANCE = "IRIS"

_CONFIG = """\
[instance]
name = "{name}"
messages_log = "{log}"
timezone = "UTC"

[state]
dir = "{state}"

[api]
listen = "unix:{socket}"
token_file = "{state}/api.token"

[tail]
poll_interval = 0.2
entry_linger = 0.2

[log]
format = "{log_format}"
level = "info"
"""


def run_demo(*, scenario: str, speed: float, as_json: bool, keep: bool, timeout: float) -> int:
    from irisd.emulator import scenarios

    if scenario not in scenarios.names():
        raise UsageError(f"--scenario: unknown {scenario!r}; known: {', '.join(scenarios.names())}")
    scratch = Path(tempfile.mkdtemp(prefix="irisd-demo-"))

    def say(message: str) -> None:
        if not as_json:
            print(message, flush=True)

    try:
        with _stop_signals_interrupt():
            report = _play(scratch, scenario=scenario, speed=speed, timeout=timeout, say=say)
    except KeyboardInterrupt:
        say("interrupted; everything the demo started is stopped")
        return 130
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(_render(report))
    return 0 if report["entries"] and report["caught_up"] and report["delivered"]["ok"] else 1


def _play(
    scratch: Path, *, scenario: str, speed: float, timeout: float, say: Callable[[str], None]
) -> dict[str, Any]:
    """Run everything; leaving the `with` (also on Ctrl-C) stops what was started, newest first."""
    from irisd.emulator import control
    from irisd.emulator.layout import init_instance

    instance = scratch / "iris"
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        receiver, alertmanager = start_sinks(stack, scratch, say)
        paths = init_instance(instance, name=INSTANCE)
        say(f"emulated instance {INSTANCE} laid out in {instance}")
        sinks = sinks_toml(
            receiver.url, receiver.secret, None if alertmanager is None else alertmanager.url
        )
        daemon = _start_daemon(stack, _write_config(scratch, paths.messages, sinks), scratch)
        say(f"irisd started (pid {daemon.pid}), following {paths.messages}")
        stack.callback(_force_stop, instance)  # interrupted or failed before the graceful stop
        control.start(instance, scenario=scenario, speed=speed)
        say(f"instance started; playing scenario {scenario!r} at {speed:g}x")
        control.wait_scenario(instance, timeout=timeout)
        say("scenario played; stopping the instance")
        control.stop(instance, timeout=timeout)
        report, stored = asyncio.run(_collect(scratch, paths.messages, timeout))
        alerts = None if alertmanager is None else alertmanager.alerts(INSTANCE)
        outbox = report.pop("outbox")
        report["delivered"] = delivery_report(receiver.tally(), stored, outbox, alerts)
    report.update(scenario=scenario, seconds=round(time.monotonic() - started, 2))
    return report


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) clean up the way Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; a caller there has its own
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _force_stop(instance: Path) -> None:
    from irisd.emulator import control

    if _running(instance):
        with contextlib.suppress(IrisdError, OSError):
            control.force(instance)


def _running(instance: Path) -> bool:
    from irisd.emulator import files
    from irisd.emulator.layout import InstancePaths

    return files.running_pid(InstancePaths(instance)) is not None


def _write_config(scratch: Path, log: Path, sinks: str) -> Path:
    state = scratch / "state"
    text = _CONFIG.format(
        name=INSTANCE,
        log=log,
        state=state,
        socket=scratch / "api.sock",
        log_format="json" if not sys.stderr.isatty() else "human",
    )
    config = scratch / "irisd.toml"
    config.write_text(text + sinks, encoding="utf-8")
    config.chmod(0o600)  # it holds the webhook secret
    return config


def _start_daemon(
    stack: contextlib.ExitStack, config: Path, scratch: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
    log = open(scratch / "irisd.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "irisd.cli", "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    stack.callback(_stop_daemon, proc)
    deadline = time.monotonic() + 30
    while not (scratch / "api.sock").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise IrisdError(
                f"irisd did not start; see {scratch / 'irisd.log'}:\n"
                + (scratch / "irisd.log").read_text(errors="replace")[-2000:]
            )
        time.sleep(0.05)
    return proc


def _stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _collect(
    scratch: Path,
    log: Path,
    timeout: float,  # noqa: ASYNC109 - a deadline over many calls
) -> tuple[dict[str, Any], frozenset[str]]:
    """Wait until the daemon has read the whole log and its sinks have acknowledged every event,
    then fetch what it stored: the summary and the stored event ids."""
    token = read_token(scratch / "state" / "api.token", private=True)
    async with ApiClient(scratch / "api.sock", token) as client:
        deadline = time.monotonic() + timeout
        status: Mapping[str, Any] = {}
        caught_up = False
        while time.monotonic() < deadline:
            status = await client.status()
            tail: Any = status["tail"]
            size = log.stat().st_size  # noqa: ASYNC240 - one local stat, microseconds
            if tail["bytes"] >= size and tail["lag_bytes"] == 0:
                caught_up = True
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # let the last entry's linger pass
        status = await _drained(client, deadline)
        events = await _all_events(client)
    by_code = Counter(e["code"] for e in events)
    by_severity = Counter(SEVERITY_NAMES[e["severity"]] for e in events)
    final: Any = status["tail"]
    report = {
        "caught_up": caught_up,
        "entries": final["entries"],
        "lines": final["lines"],
        "unparsed": final["unparsed"],
        "by_code": dict(by_code.most_common()),
        "by_severity": dict(by_severity),
        "severe": [
            {
                "timestamp": e["timestamp"],
                "severity": e["severity"],
                "code": e["code"],
                "message": e["message"].partition("\n")[0][:160],
            }
            for e in events
            if e["severity"] >= 2
        ][:20],
        "outbox": status["outbox"],
    }
    return report, frozenset(str(e["event_id"]) for e in events)


async def _drained(client: ApiClient, deadline: float) -> Mapping[str, Any]:
    """The daemon's status once no stored event is owed to any sink, or at the deadline."""
    while True:
        status = await client.status()
        outbox: Any = status["outbox"]
        if outbox["depth"] == 0 or time.monotonic() >= deadline:
            return status
        await asyncio.sleep(0.05)  # the daemon is another process; its API is all there is


async def _all_events(client: ApiClient) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params = [("limit", "1000")] + ([("after", str(after))] if after else [])
        page: Any = await client.events(params)
        rows = page["events"]
        out.extend(rows)
        cursor = page.get("next")
        if not rows or not cursor:
            return out
        after = str(cursor)


def _render(report: Mapping[str, Any]) -> str:
    lines = [
        "",
        f"irisd demo: scenario {report['scenario']!r} in {report['seconds']} s",
        f"  read {report['lines']} lines as {report['entries']} entries ({report['unparsed']} unparsed); "
        f"caught up: {'yes' if report['caught_up'] else 'NO'}",
        "  by severity: " + ", ".join(f"{k} {v}" for k, v in report["by_severity"].items()),
        "  by code:",
        *[f"    {count:5d}  {code}" for code, count in report["by_code"].items()],
        "  severe and fatal entries:",
        *[
            f"    {e['timestamp']}  {e['severity']}  {e['code']:28} {e['message']}"
            for e in report["severe"]
        ],
        *render_delivered(report["delivered"], instance=INSTANCE),
    ]
    return "\n".join(lines)
