"""`irisd generate --llm` against a real loopback server speaking OpenAI's chat-completions API:
what is accepted and rejected (and why), the counts and the format-match rate in the report,
re-stamping, the request budget, and one clear line when the endpoint cannot be used."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from irisd.core.model import LogEntry
from irisd.core.pipeline import classify_text
from irisd.emulator import llm, llm_client
from irisd.emulator.generate import DEFAULT_ANCHOR
from irisd.emulator.logfmt import timestamp
from irisd.errors import UsageError
from irisd.rules import default_classifier

LOCK = (
    "Lock table full: LOCK request by process {pid} failed (lock table 16777216 bytes, all in use)"
)
MONITOR = "[SYSTEM MONITOR] LockTable Alert: Lock table is 97.5% full ( Alertvalue is 95)."

# Three replies to a request for five `lock` entries of severity 2-3. Accepted and rejected,
# reply by reply: 2 + 3 rejected; 1 + 2 rejected; 3 (one more than the 2 still wanted).
REPLIES = [
    "```text\n"
    "Here are the entries:\n"  # no header: unparsed
    f"03/01/25-10:00:00:001 (31337) 2 [Generic.Event] {LOCK.format(pid=31337)}\n"
    f"03/01/25-10:00:02:000 (31339) 1 [Generic.Event] {LOCK.format(pid=31339)}\n"  # severity 1
    "03/01/25-10:00:03:000 (31340) 2 [Generic.Event] Allocated 504MB shared memory\n"  # memory
    f"03/01/25-10:00:04:000 (31337) 3 [Generic.Event] {LOCK.format(pid=31337)}\n"
    "```\n",
    f"1. 03/01/25-10:00:05:000 (31341) 2 [Generic.Event] {LOCK.format(pid=31341)}\n"  # numbered
    f"\n03/01/25-10:00:05:500 (4262) 2 [Utility.Event] {MONITOR}\n"
    "03/01/25-10:00:06:000 (31342) 2 [Generic.Event] the sky is falling\n",  # no rule: unknown
    f"03/01/25-10:00:07:000 (31343) 2 [Generic.Event] {LOCK.format(pid=31343)}\n"
    f"03/01/25-10:00:08:000 (4262) 2 [Utility.Event] {MONITOR}\n"
    f"03/01/25-10:00:09:000 (31344) 2 [Generic.Event] {LOCK.format(pid=31344)}\n",
]


@dataclass
class ModelServer:
    """POST /v1/chat/completions answered from `replies` in turn (the last one repeats), or
    with `status` when it is set. Records each request's JSON and Authorization header."""

    replies: list[str]
    status: int = 200
    url: str = ""
    seen: list[dict[str, object]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append(body)
        self.keys.append(request.headers.get("Authorization", ""))
        if self.status != 200:
            return web.json_response(
                {"error": {"message": "nope", "type": "x"}}, status=self.status
            )
        text = self.replies[min(len(self.seen), len(self.replies)) - 1]
        return web.json_response(_completion(body["model"], text))


def _completion(model: str, text: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1_740_000_000,
        "model": model, "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
    }  # fmt: skip


@pytest.fixture
async def server() -> AsyncIterator[ModelServer]:
    model = ModelServer(list(REPLIES))
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    model.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    yield model
    await runner.cleanup()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "irisd.toml"
    path.write_text("")  # all defaults: nothing from /etc/irisd leaks in
    return path


Cli = Callable[..., Awaitable[tuple[int, str, str]]]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IRISD_", "OPENAI_"))}
    return {**env, **extra}


async def _irisd(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The real command, as a process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "irisd.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_counts_rate_and_restamped_lines(
    server: ModelServer, config: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    code, out, err = await _irisd(
        "generate", "--llm", "--category", "lock", "--severity", "2-3", "--count", "5",
        "--seed", "3", "--llm-base-url", server.url, "--config", str(config),
        "--report", str(report),
        env=_env(IRISD_LLM_API_KEY="k-test", IRISD_LLM_MODEL="tiny-model"),
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(report.read_text())["llm"]
    assert summary["requests"] == 3
    assert summary["lines_requested"] == 5 + 3 + 2
    assert summary["lines_returned"] == 5 + 3 + 3
    assert summary["lines_accepted"] == 2 + 1 + 3
    assert summary["lines_rejected"] == 5
    assert summary["rejected_by_reason"] == {"category": 1, "severity": 1, "unclassified": 1,
                                             "unparsed": 2}  # fmt: skip
    assert summary["lines_emitted"] == 5
    assert summary["format_match_rate"] == round(6 / 11, 4)
    assert len(summary["latency_ms"]["per_request"]) == 3
    assert summary["latency_ms"]["total"] >= sum(summary["latency_ms"]["per_request"])
    assert "format match 54.5%" in err
    assert "lines requested 10, returned 11, accepted 6, rejected 5" in err
    _assert_lines(out, count=5)
    assert [s["temperature"] for s in server.seen] == [0.7, 0.7, 0.7]
    assert {s["model"] for s in server.seen} == {"tiny-model"}
    assert set(server.keys) == {"Bearer k-test"}
    prompts = [str(s["messages"][1]["content"]) for s in server.seen]  # type: ignore[index]
    assert [p.split()[1] for p in prompts] == ["5", "3", "2"]  # asks only for what is missing
    assert all("Real messages.log entries" in p for p in prompts)


def _assert_lines(out: str, *, count: int) -> None:
    classified = classify_text(out, classifier=default_classifier())
    assert len(classified) == count
    entries = [c.entry for c in classified]
    assert all(isinstance(e, LogEntry) for e in entries)
    assert all(c.classification.code.startswith("lock.") for c in classified)
    assert all(2 <= c.entry.severity <= 3 for c in classified)
    stamps = [e.timestamp for e in entries if isinstance(e, LogEntry)]
    assert stamps == sorted(stamps)
    assert out.startswith("03/01/25-09:00:0")  # from the anchor, like the template path
    pids = [e.pid for e in entries if isinstance(e, LogEntry)]
    assert pids[0] == pids[1]  # the model's 31337 twice: one session pid
    assert f"process {pids[0]} failed" in out  # the mention follows the header
    assert "31337" not in out


async def test_json_output_ends_with_the_summary(
    run_cli: Cli, server: ModelServer, config: Path
) -> None:
    code, out, _ = await run_cli(
        "generate", "--llm", "--category", "lock", "--severity", "2-3", "--count", "5",
        "--output", "json", "--llm-base-url", server.url, "--llm-model", "m",
        "--config", str(config), "--temperature", "0.2", env={"IRISD_LLM_API_KEY": "k"},
    )  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 6
    assert all(r["code"].startswith("lock.") for r in rows[:5])
    assert rows[5]["summary"]["llm"]["lines_accepted"] == 6
    assert rows[5]["summary"]["lines"] == 5
    assert {s["temperature"] for s in server.seen} == {0.2}


async def test_budget_spent_without_enough_valid_lines_exits_1(
    run_cli: Cli, server: ModelServer, config: Path
) -> None:
    server.replies = ["Sorry, I cannot help with that.\n"]
    code, out, err = await run_cli(
        "generate", "--llm", "--count", "4", "--llm-max-requests", "2", "--llm-base-url",
        server.url, "--llm-model", "m", "--config", str(config), env={"IRISD_LLM_API_KEY": "k"},
    )  # fmt: skip
    assert code == 1
    assert out == ""
    assert len(server.seen) == 2
    assert "irisd: generate --llm: 0 of 4 valid lines after 2 requests" in err
    assert "format match 0.0%" in err


@pytest.mark.parametrize(
    ("status", "words"), [(401, "HTTP 401"), (404, "HTTP 404")], ids=["key-refused", "no-model"]
)
async def test_a_refusing_endpoint_is_one_line_and_exit_69(
    run_cli: Cli, server: ModelServer, config: Path, status: int, words: str
) -> None:
    server.status = status
    code, out, err = await run_cli(
        "generate", "--llm", "--llm-base-url", server.url, "--llm-model", "m",
        "--config", str(config), env={"IRISD_LLM_API_KEY": "k"},
    )  # fmt: skip
    assert (code, out, err.count("\n")) == (69, "", 1)
    assert words in err
    assert len(server.seen) == 1  # no retry of a refusal


async def test_unreachable_endpoint_is_one_line_and_exit_69(run_cli: Cli, config: Path) -> None:
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    code, out, err = await run_cli(
        "generate", "--llm", "--llm-base-url", url, "--llm-model", "m",
        "--config", str(config), env={"IRISD_LLM_API_KEY": "k"},
    )  # fmt: skip
    assert (code, out, err.count("\n")) == (69, "", 1)
    assert f"cannot reach the model endpoint {url}" in err


@pytest.mark.parametrize(
    ("env", "key"),
    [({"IRISD_LLM_MODEL": "m"}, "llm.api_key"), ({"IRISD_LLM_API_KEY": "k"}, "llm.model")],
    ids=["no-key", "no-model"],
)
async def test_missing_key_or_model_is_one_line_and_exit_78(
    run_cli: Cli, config: Path, env: dict[str, str], key: str
) -> None:
    code, out, err = await run_cli("generate", "--llm", "--config", str(config), env=dict(**env))
    assert (code, out, err.count("\n")) == (78, "", 1)
    assert err.startswith(f"irisd: {key}: ")


async def test_config_section_is_read_and_flags_win(server: ModelServer, tmp_path: Path) -> None:
    config = tmp_path / "irisd.toml"
    config.write_text(f'[llm]\nbase_url = "{server.url}"\nmodel = "from-file"\napi_key = "fk"\n'
                      "temperature = 1.1\n")  # fmt: skip
    point = llm_client.endpoint(base_url=None, model=None, temperature=None, config=config, env={})
    assert (point.base_url, point.model, point.api_key, point.temperature) == (
        server.url, "from-file", "fk", 1.1)  # fmt: skip
    point = llm_client.endpoint(base_url="http://x/v1", model="flag", temperature=0.0,
                                config=config, env={"IRISD_LLM_MODEL": "env"})  # fmt: skip
    assert (point.base_url, point.model, point.temperature) == ("http://x/v1", "flag", 0.0)


async def test_server_errors_spend_the_budget_and_are_retried(server: ModelServer) -> None:
    server.status = 503
    point = llm_client.Endpoint(server.url, "m", "k", 0.7, 10.0)
    pauses: list[float] = []
    session = llm_client.Session(llm.Ask("lock", 2, 3), 2, 0, 3, pause=pauses.append)
    kept, report = await asyncio.to_thread(llm_client.generate, point, session)
    assert kept == []
    assert [r.error[:8] for r in report.requests] == ["HTTP 503"] * 3
    assert pauses == [2.0, 4.0, 8.0]
    assert report.as_dict()["failed_requests"] == 3


# -- the pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "verdict"),
    [
        (f"03/01/25-10:00:00:001 (7) 2 [Generic.Event] {LOCK.format(pid=7)}", "lock.table_full"),
        (f"03/01/25-10:00:00.001 (7) 3 [Generic.Event] {LOCK.format(pid=7)}", "lock.table_full"),
        (f"03/01/25-10:00:00:001 (7) 0 [Generic.Event] {LOCK.format(pid=7)}", "severity"),
        (f"03/01/25-10:00:00:001 (7) 2 {LOCK.format(pid=7)}", "no_category"),
        ("03/01/25-10:00:00:001 (7) 2 [Generic.Event] Allocated 5MB shared memory", "category"),
        ("03/01/25-10:00:00:001 (7) 2 [Generic.Event] nothing known", "unclassified"),
        ("10:00:00 lock table full", "unparsed"),
    ],
    ids=["ok", "dot-ms", "severity", "no-category", "other-subsystem", "unknown", "no-header"],
)
def test_judge(line: str, verdict: str) -> None:
    checked = llm.check(line + "\n", llm.Ask("lock", 2, 3), default_classifier())
    got = checked.accepted[0].code if checked.accepted else next(iter(checked.rejected))
    assert got == verdict
    assert checked.returned == 1


def test_restamper_is_sequential_stable_and_seeded() -> None:
    kept = [llm.Accepted(p, 2, "Generic.Event", LOCK.format(pid=p), "lock.table_full")
            for p in (900, 901, 900)]  # fmt: skip
    one = [llm.Restamper(seed=4).stamp(k) for k in kept]
    stamper = llm.Restamper(seed=4)
    two = [stamper.stamp(k) for k in kept]
    pids = [g.line.pid for g in two]
    assert pids[0] == pids[2] != pids[1]
    assert [g.at for g in two] == sorted(g.at for g in two)
    assert two[0].at > DEFAULT_ANCHOR
    assert timestamp(one[0].at) == timestamp(two[0].at)


def test_packaged_examples_are_real_entries_from_log_samples() -> None:
    """What an installed wheel (no log_samples/ beside it) gives the model."""
    packaged = llm.packaged_samples()
    samples = "".join(llm.sample_texts())
    entries = [c.entry for c in classify_text(packaged, classifier=default_classifier())]
    assert len(entries) > 40
    data = packaged.encode()
    for entry in entries:
        assert isinstance(entry, LogEntry)
        assert data[entry.offset : entry.end].decode() in samples


def test_an_examples_directory_without_logs_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no \*\.log files"):
        llm.sample_texts(tmp_path)
    (tmp_path / "mine.log").write_text(f"03/01/25-10:00:00:001 (7) 2 [Generic.Event] {LOCK}\n")
    assert llm.sample_texts(tmp_path) == [(tmp_path / "mine.log").read_text()]


@pytest.mark.parametrize("category", ["lock", "memory", "security", None])
def test_examples_fit_the_ask(category: str | None) -> None:
    ask = llm.Ask(category, 2, 3)
    shots = llm.examples(llm.sample_texts(), ask, default_classifier(), seed=1)
    assert 1 <= len(shots) <= llm.EXAMPLES
    for got in classify_text("\n".join(shots) + "\n", classifier=default_classifier()):
        assert ask.wants(got.classification.code, got.entry.severity)
