"""`irisd generate --publish`: generated entries reach the configured sinks as the daemon's events
do (signed webhook batches, stable ids of their own source, min_severity honoured), and what
cannot be delivered is reported with a non-zero exit."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from delivery_kit import Receiver, closed_port, receiving

from irisd.core.pipeline import classify_text
from irisd.rules import default_classifier

SECRET = "s3cret-for-tests"
Cli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as rec:
        yield rec


def _config(tmp_path: Path, sinks: str) -> Path:
    path = tmp_path / "irisd.toml"
    path.write_text(f'[instance]\nname = "IRIS"\nhost = "gen-host"\ntimezone = "UTC"\n'
                    f'[state]\ndir = "{tmp_path}/state"\n{sinks}')  # fmt: skip
    return path


def _webhook(url: str, **extra: object) -> str:
    lines = [f'[[sinks]]\ntype = "webhook"\nname = "hook"\nurl = "{url}"\nsecret = "{SECRET}"',
             "backoff_base = 0.05\nbackoff_cap = 0.1"]  # fmt: skip
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


async def test_events_reach_the_webhook_signed_with_ids_of_their_own(
    receiver: Receiver, tmp_path: Path
) -> None:
    config = _config(tmp_path, _webhook(receiver.url))
    cmd = [sys.executable, "-m", "irisd.cli", "generate", "--count", "20", "--seed", "7",
           "--publish", "--config", str(config)]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    events = [e for r in receiver.requests for e in json.loads(r.body)["events"]]
    assert len(events) == 20
    assert len({e["event_id"] for e in events}) == 20
    for request in receiver.requests:
        stamp = request.headers["X-Irisd-Timestamp"]
        mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + request.body, hashlib.sha256)
        assert hmac.compare_digest(request.headers["X-Irisd-Signature"], mac.hexdigest())
    digest = hashlib.sha256(out).hexdigest()[:12]
    assert {e["source"] for e in events} == {f"generate:7:{digest}"}
    assert {e["host"] for e in events} == {"gen-host"}
    expected = [
        c.classification.code for c in classify_text(out.decode(), classifier=default_classifier())
    ]
    assert [e["code"] for e in sorted(events, key=lambda e: e["offset"])] == expected
    assert "sink hook: delivered 20, skipped 0, dead-lettered 0, unsettled 0" in err.decode()


async def test_a_rerun_publishes_the_same_ids(
    receiver: Receiver, tmp_path: Path, run_cli: Cli
) -> None:
    config = _config(tmp_path, _webhook(receiver.url))
    args = ("generate", "--count", "5", "--seed", "2", "--publish", "--config", str(config))
    assert (await run_cli(*args))[0] == 0
    assert (await run_cli(*args))[0] == 0
    assert len(receiver.accepted) == 10
    assert receiver.accepted[:5] == receiver.accepted[5:]


async def test_min_severity_skips_and_a_jsonl_sink_takes_everything(
    receiver: Receiver, tmp_path: Path, run_cli: Cli
) -> None:
    jsonl = tmp_path / "events.jsonl"
    sinks = _webhook(receiver.url, min_severity=2)
    sinks += f'[[sinks]]\ntype = "jsonl"\nname = "file"\npath = "{jsonl}"\n'
    code, out, err = await run_cli("generate", "--count", "30", "--seed", "1", "--output", "json",
                                   "--publish", "--config", str(_config(tmp_path, sinks)))  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    severe = sum(1 for r in rows[:-1] if r["severity"] >= 2)
    assert 0 < severe < 30
    assert len(receiver.accepted) == severe
    assert len(jsonl.read_text().splitlines()) == 30
    sinks_report = rows[-1]["summary"]["publish"]["sinks"]
    assert sinks_report["hook"]["delivered"] == severe
    assert sinks_report["hook"]["skipped"] == 30 - severe
    assert sinks_report["file"]["delivered"] == 30


async def test_refused_events_are_dead_lettered_and_exit_1(
    receiver: Receiver, tmp_path: Path, run_cli: Cli
) -> None:
    async def refuse(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({"error": "schema says no"}, status=400)

    receiver.behaviour = refuse
    report = tmp_path / "report.json"
    code, _, err = await run_cli("generate", "--count", "8", "--publish", "--report", str(report),
                                 "--config", str(_config(tmp_path, _webhook(receiver.url))))  # fmt: skip
    assert code == 1
    hook = json.loads(report.read_text())["publish"]["sinks"]["hook"]
    assert (hook["delivered"], hook["dead_lettered"], hook["unsettled"]) == (0, 8, 0)
    assert "schema says no" in hook["refusal"]
    assert "dead-lettered 8" in err


async def test_an_unreachable_sink_times_out_and_exits_1(tmp_path: Path, run_cli: Cli) -> None:
    with closed_port() as port:
        config = _config(tmp_path, _webhook(f"http://127.0.0.1:{port}/hook"))
    code, _, err = await run_cli("generate", "--count", "3", "--publish", "--publish-timeout",
                                 "0.3", "--config", str(config))  # fmt: skip
    assert code == 1
    assert "(timed out)" in err
    assert "delivered 0, skipped 0, dead-lettered 0, unsettled 3" in err


async def test_no_sinks_is_a_configuration_error(tmp_path: Path, run_cli: Cli) -> None:
    code, out, err = await run_cli("generate", "--count", "3", "--publish", "--config",
                                   str(_config(tmp_path, "")))  # fmt: skip
    assert code == 78
    assert err == "irisd: sinks: no enabled [[sinks]] to publish to\n"
    assert out == ""  # refused before anything was generated
