"""The Alertmanager sink against a real Prometheus Alertmanager, read back through its API v2."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from delivery_kit import FastClock, closed_port, make_event

from irisd.core.model import Event
from irisd.core.sinks.alertmanager import AlertPolicy
from irisd.shell.outbox import MemoryOutbox
from irisd.shell.publisher import Publisher, SinkOptions
from irisd.shell.sink_drivers import AlertmanagerDriver, HttpClient

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1h
receivers:
  - name: blackhole
"""

pytestmark = pytest.mark.skipif(
    not Path(BINARY).exists(),
    reason="prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)",
)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on a free loopback port, clustering off, state in a temp dir."""
    home = tmp_path_factory.mktemp("alertmanager")
    (home / "alertmanager.yml").write_text(CONFIG)
    with closed_port() as port, (home / "stderr").open("wb") as stderr:
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [
                BINARY,
                f"--config.file={home / 'alertmanager.yml'}",
                f"--storage.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "alertmanager exited at start-up"
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)  # a separate process starting: nothing to await but its port
    raise AssertionError("alertmanager did not become ready")


def alerts(url: str, code: str) -> list[dict[str, object]]:
    """Active alerts of one code, as Alertmanager reports them."""
    query = f"{url}/api/v2/alerts?filter=code%3D%22{code}%22"
    with urllib.request.urlopen(query, timeout=5) as answer:
        data: list[dict[str, object]] = json.load(answer)
    return data


@pytest.fixture
async def publish(alertmanager: str) -> AsyncIterator[tuple[MemoryOutbox, AlertmanagerDriver]]:
    clock = FastClock()
    outbox = MemoryOutbox(clock=clock.time)
    http = HttpClient()
    policy = AlertPolicy(
        resolve_after=timedelta(seconds=1.5),
        resend_interval=timedelta(0),
        generator_url="http://127.0.0.1:8737",
    )
    options = SinkOptions(name="am", min_severity=policy.min_severity, linger=0.0, timeout=5)
    driver = AlertmanagerDriver(options, url=alertmanager, policy=policy, http=http, clock=clock)
    publisher = Publisher(outbox, [driver], clock=clock)
    task = asyncio.create_task(publisher.run())
    yield outbox, driver
    publisher.close()
    await task
    await http.aclose()


def now_event(n: int, code: str, *, severity: int = 2, ahead: float = 0.0) -> Event:
    return make_event(n, code=code, severity=severity)._replace(timestamp=time.time() + ahead)


async def delivered(outbox: MemoryOutbox) -> None:
    async with asyncio.timeout(10):
        while outbox.stats(now=time.time()).rows:  # noqa: ASYNC110 - no event for an ack
            await asyncio.sleep(0.005)


async def test_a_severe_event_becomes_an_alert_with_labels_annotations_and_times(
    alertmanager: str, publish: tuple[MemoryOutbox, AlertmanagerDriver]
) -> None:
    outbox, _ = publish
    event = now_event(1, "lock.table_full")
    outbox.append([event])
    await delivered(outbox)
    [alert] = alerts(alertmanager, "lock.table_full")
    assert alert["labels"] == {
        "alertname": "IrisLockTableFull",
        "code": "lock.table_full",
        "error_type": "resource",
        "host": "db1",
        "instance": "IRIS",
        "severity": "severe",
    }
    annotations = alert["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["summary"] == "IRIS on db1: entry 1"
    assert annotations["event_id"] == event.event_id
    assert alert["generatorURL"] == "http://127.0.0.1:8737/events?code=lock.table_full"
    status = alert["status"]
    assert isinstance(status, dict)
    assert status["state"] == "active"


async def test_info_and_warning_events_raise_no_alert(
    alertmanager: str, publish: tuple[MemoryOutbox, AlertmanagerDriver]
) -> None:
    outbox, _ = publish
    outbox.append(
        [now_event(2, "journal.switch", severity=0), now_event(3, "journal.switch", severity=1)]
    )
    await delivered(outbox)
    assert alerts(alertmanager, "journal.switch") == []


async def test_a_repeating_condition_stays_firing_and_resolves_once_it_stops(
    alertmanager: str, publish: tuple[MemoryOutbox, AlertmanagerDriver]
) -> None:
    outbox, driver = publish
    outbox.append([now_event(4, "writedaemon.paused")])
    await delivered(outbox)
    [first] = alerts(alertmanager, "writedaemon.paused")
    outbox.append([now_event(5, "writedaemon.paused", ahead=1.0)])  # it happens again
    await delivered(outbox)
    [again] = alerts(alertmanager, "writedaemon.paused")
    assert again["startsAt"] == first["startsAt"]  # one alert, still the same streak
    assert str(again["endsAt"]) > str(first["endsAt"])  # kept firing for longer
    async with asyncio.timeout(10):  # the condition stopped: within resolve_after it is over
        while alerts(alertmanager, "writedaemon.paused"):  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # Alertmanager is another process; poll its API
    await driver.tick()
    assert not driver.book.streaks  # the stopped streak was closed and its resolution posted


async def test_an_unreachable_alertmanager_keeps_events_pending() -> None:
    clock = FastClock()
    outbox = MemoryOutbox(clock=clock.time)
    http = HttpClient()
    with closed_port() as port:
        driver = AlertmanagerDriver(
            SinkOptions(name="am", linger=0.0, timeout=1),
            url=f"http://127.0.0.1:{port}",
            policy=AlertPolicy(),
            http=http,
            clock=clock,
        )
        publisher = Publisher(outbox, [driver], clock=clock)
        task = asyncio.create_task(publisher.run())
        outbox.append([now_event(6, "lock.table_full")])
        async with asyncio.timeout(10):
            while publisher.counters.value(publisher.counters.retried, "am") < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        publisher.close()
        await task
    await http.aclose()
    assert outbox.stats(now=clock.time()).sinks["am"].pending == 1
    assert not driver.book.streaks  # the book only records what Alertmanager accepted
