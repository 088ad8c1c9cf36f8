"""`irisd demo` as a real process: its events reach the local webhook receiver, every signature
checked, and a real Alertmanager when one is installed; Ctrl-C stops every child. The receiver,
the Alertmanager finder and the delivery verdict are also pinned on their own."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from irisd.core.sinks.webhook import sign
from irisd.demo_delivery import (
    NOT_INSTALLED,
    WebhookReceiver,
    WebhookTally,
    delivery_report,
    find_alertmanager,
    render_delivered,
)

ALERTMANAGER = find_alertmanager()
NEEDS_ALERTMANAGER = pytest.mark.skipif(
    ALERTMANAGER is None,
    reason="prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)",
)
DEMO = [
    sys.executable,
    "-m",
    "irisd.cli",
    "demo",
    "--scenario",
    "lock_table_full",
    "--speed",
    "100",
]


# -- the demo, end to end ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> tuple[int, dict[str, Any]]:
    """One `irisd demo --json` run shared by the tests that read its report."""
    done = subprocess.run(
        [*DEMO, "--json", "--timeout", "60"], capture_output=True, timeout=120, check=False
    )
    assert done.stdout, done.stderr.decode(errors="replace")[-2000:]
    return done.returncode, json.loads(done.stdout)


@pytest.mark.slow
def test_the_webhook_receives_every_stored_event_with_valid_signatures(
    demo: tuple[int, dict[str, Any]],
) -> None:
    code, report = demo
    delivered = report["delivered"]
    hook = delivered["webhook"]
    assert code == 0, delivered
    assert report["caught_up"]
    assert delivered["drained"]
    assert delivered["outbox_depth"] == 0
    assert hook["stored"] == report["entries"] > 0
    assert hook["distinct_ids"] == hook["stored"]
    assert (hook["missing"], hook["unknown"], hook["bad_signatures"]) == (0, 0, 0)
    assert hook["events"] >= hook["distinct_ids"]  # at least once: a resend may repeat an id
    assert hook["complete"]
    assert delivered["ok"]


@pytest.mark.slow
@NEEDS_ALERTMANAGER
def test_alertmanager_holds_the_alert_of_the_scenarios_severe_entries(
    demo: tuple[int, dict[str, Any]],
) -> None:
    _, report = demo
    assert report["by_severity"].get("severe", 0) > 0
    held = report["delivered"]["alertmanager"]
    assert held["installed"]
    assert held["dead_letters"] == 0
    assert held["alerts"].get("IrisLockTableFull", 0) >= 1
    assert held["alert_count"] == sum(held["alerts"].values())


@pytest.mark.slow
def test_ctrl_c_stops_the_daemon_alertmanager_and_instance_and_removes_the_scratch() -> None:
    with subprocess.Popen(
        [*DEMO[:-1], "2"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stdout is not None
        seen = _read_until(proc.stdout, "instance started")
        proc.send_signal(signal.SIGINT)
        seen += proc.stdout.read()
        assert proc.wait(timeout=60) == 130
    assert "interrupted" in seen
    pids = [int(pid) for pid in re.findall(r"\(pid (\d+)\)", seen)]
    assert len(pids) == (2 if ALERTMANAGER else 1)  # irisd, and Alertmanager when installed
    assert not [pid for pid in pids if _alive(pid)]
    scratch = Path(re.findall(r"laid out in (\S+)/iris", seen)[0])
    assert not scratch.exists()


def _read_until(stream: IO[str], marker: str) -> str:
    seen = ""
    for line in stream:
        seen += line
        if line.startswith(marker):
            return seen
    raise AssertionError(f"the demo ended before {marker!r}:\n{seen}")


def _alive(pid: int) -> bool:
    """True while `pid` runs (the demo reaps its children, so a stopped one is gone, not a
    zombie)."""
    return Path(f"/proc/{pid}").exists()


# -- the receiver ------------------------------------------------------------------------------

SECRET = "s3cret"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as rec:
        yield rec


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def signed(body: bytes, *, secret: str = SECRET, age: int = 0) -> dict[str, str]:
    stamp = str(int(time.time()) - age)
    return {"X-Irisd-Timestamp": stamp, "X-Irisd-Signature": sign(secret, stamp, body)}


def events(*ids: str) -> bytes:
    return json.dumps(
        {"events": [{"event_id": i, "code": "lock.table_full"} for i in ids]}
    ).encode()


def test_signed_batches_are_counted_and_a_resent_id_counts_once_as_distinct(
    receiver: WebhookReceiver,
) -> None:
    first, again = events("a", "b"), events("b", "c")
    assert post(receiver.url, first, signed(first)) == 200
    assert post(receiver.url, again, signed(again)) == 200
    assert receiver.tally() == WebhookTally(
        requests=2, events=4, ids=frozenset({"a", "b", "c"}), bad_signatures=0, malformed=0
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="unsigned"),
        pytest.param(signed(events("x"), secret="other"), id="wrong-secret"),
        pytest.param(signed(events("y")), id="signature-of-another-body"),
        pytest.param(signed(events("x"), age=3600), id="an-hour-old"),
    ],
)
def test_a_bad_signature_is_refused_401_counted_and_its_events_not(
    receiver: WebhookReceiver, headers: dict[str, str]
) -> None:
    assert post(receiver.url, events("x"), headers) == 401
    assert receiver.tally() == WebhookTally(bad_signatures=1)


def test_a_signed_body_that_is_not_a_batch_is_refused_400(receiver: WebhookReceiver) -> None:
    body = b'{"alerts": []}'
    assert post(receiver.url, body, signed(body)) == 400
    assert receiver.tally() == WebhookTally(malformed=1)


# -- finding Alertmanager, the verdict ---------------------------------------------------------


def test_find_alertmanager_finds_either_name_on_the_path(tmp_path: Path) -> None:
    program = tmp_path / "alertmanager"
    program.write_text("#!/bin/sh\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    assert find_alertmanager(str(tmp_path), fallback="") == str(program)


def test_find_alertmanager_is_none_when_neither_path_nor_fallback_has_it(tmp_path: Path) -> None:
    assert find_alertmanager(str(tmp_path), fallback=str(tmp_path / "none")) is None
    assert find_alertmanager("", fallback="") is None


STORED = frozenset({"a", "b"})
DRAINED = {"depth": 0, "sinks": {"demo-webhook": {"pending": 0, "in_flight": 0, "dead": 0}}}


@pytest.mark.parametrize(
    ("tally", "outbox", "ok"),
    [
        pytest.param(WebhookTally(1, 2, STORED), DRAINED, True, id="all-delivered"),
        pytest.param(WebhookTally(2, 3, STORED), DRAINED, True, id="a-duplicate-is-fine"),
        pytest.param(WebhookTally(1, 1, frozenset({"a"})), DRAINED, False, id="one-missing"),
        pytest.param(WebhookTally(1, 2, STORED, bad_signatures=1), DRAINED, False, id="bad-sig"),
        pytest.param(WebhookTally(1, 2, STORED), {**DRAINED, "depth": 1}, False, id="not-drained"),
        pytest.param(
            WebhookTally(1, 2, STORED),
            {"depth": 0, "sinks": {"demo-alertmanager": {"dead": 1}}},
            False,
            id="dead-letter",
        ),
    ],
)
def test_the_demo_succeeds_only_when_every_stored_event_arrived_signed(
    tally: WebhookTally, outbox: dict[str, Any], ok: bool
) -> None:
    assert delivery_report(tally, STORED, outbox, None)["ok"] is ok


def test_without_alertmanager_the_summary_says_it_was_skipped_and_how_to_install_it() -> None:
    delivered = delivery_report(WebhookTally(1, 2, STORED), STORED, DRAINED, None)
    text = "\n".join(render_delivered(delivered, instance="IRIS"))
    assert f"alertmanager  {NOT_INSTALLED}" in text
    assert "2 distinct event ids of 2 stored" in text
    assert ": complete" in text
    assert delivered["alertmanager"] == {"installed": False, "note": NOT_INSTALLED}
