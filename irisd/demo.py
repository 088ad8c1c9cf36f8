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
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from irisd.api.client import ApiClient
from irisd.core.model import SEVERITY_NAMES
from irisd.errors import IrisdError, UsageError

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
    from irisd.emulator import control, scenarios
    from irisd.emulator.layout import init_instance

    if scenario not in scenarios.names():
        raise UsageError(f"--scenario: unknown {scenario!r}; known: {', '.join(scenarios.names())}")
    scratch = Path(tempfile.mkdtemp(prefix="irisd-demo-"))

    def say(message: str) -> None:
        if not as_json:
            print(message, flush=True)

    daemon: subprocess.Popen[bytes] | None = None
    instance = scratch / "iris"
    started = time.monotonic()
    try:
        paths = init_instance(instance, name="IRIS")
        say(f"emulated instance IRIS laid out in {instance}")
        config = _write_config(scratch, paths.messages)
        daemon = _start_daemon(config, scratch)
        say(f"irisd started (pid {daemon.pid}), following {paths.messages}")
        control.start(instance, scenario=scenario, speed=speed)
        say(f"instance started; playing scenario {scenario!r} at {speed:g}x")
        control.wait_scenario(instance, timeout=timeout)
        say("scenario played; stopping the instance")
        control.stop(instance, timeout=timeout)
        report = asyncio.run(_collect(scratch, paths.messages, timeout))
        report.update(scenario=scenario, seconds=round(time.monotonic() - started, 2))
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
        return 130
    finally:
        if _running(instance):  # interrupted or failed before the graceful stop
            with contextlib.suppress(IrisdError, OSError):
                control.force(instance)
        _stop_daemon(daemon)
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(_render(report))
    return 0 if report["entries"] and report["caught_up"] else 1


def _running(instance: Path) -> bool:
    from irisd.emulator import files
    from irisd.emulator.layout import InstancePaths

    return files.running_pid(InstancePaths(instance)) is not None


def _write_config(scratch: Path, log: Path) -> Path:
    state = scratch / "state"
    text = _CONFIG.format(
        name="IRIS",
        log=log,
        state=state,
        socket=scratch / "api.sock",
        log_format="json" if not sys.stderr.isatty() else "human",
    )
    config = scratch / "irisd.toml"
    config.write_text(text, encoding="utf-8")
    return config


def _start_daemon(config: Path, scratch: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
    log = open(scratch / "irisd.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "irisd.cli", "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not (scratch / "api.sock").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise IrisdError(
                f"irisd did not start; see {scratch / 'irisd.log'}:\n"
                + (scratch / "irisd.log").read_text(errors="replace")[-2000:]
            )
        time.sleep(0.05)
    return proc


def _stop_daemon(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _collect(scratch: Path, log: Path, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109 - a deadline over many calls
    """Wait until the daemon has read the whole log, then fetch what it stored."""
    token = (scratch / "state" / "api.token").read_text().strip()
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
        status = await client.status()
        events = await _all_events(client)
    by_code = Counter(e["code"] for e in events)
    by_severity = Counter(SEVERITY_NAMES[e["severity"]] for e in events)
    final: Any = status["tail"]
    return {
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
    }


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
    ]
    return "\n".join(lines)
