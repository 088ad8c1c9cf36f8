"""sd_notify against a real datagram socket owned by the test, and the unit file under systemd's
own verifier."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from irisd.shell.systemd import Notifier, socket_address

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "irisd.service"


class NotifySocket:
    """Plays systemd's side: a bound datagram socket; each receive is one notification."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(5)

    def receive(self) -> list[str]:
        return self.sock.recv(65536).decode().split("\n")

    def nothing_waiting(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(65536)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(5)
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd_side(tmp_path: Path) -> Iterator[tuple[NotifySocket, str]]:
    path = tmp_path / "notify.sock"
    server = NotifySocket(str(path))
    yield server, str(path)
    server.close()


@pytest.fixture
def notifier(systemd_side: tuple[NotifySocket, str]) -> Iterator[Notifier]:
    made = Notifier.from_env({"NOTIFY_SOCKET": systemd_side[1]}, pid=1)
    yield made
    made.close()


def test_lifecycle_messages_arrive_in_order(
    systemd_side: tuple[NotifySocket, str], notifier: Notifier
) -> None:
    server, _ = systemd_side
    assert notifier.ready("tailing /usr/irissys/mgr/messages.log")
    assert notifier.status("lag 0 B")
    assert notifier.watchdog()
    assert notifier.stopping()
    assert server.receive() == ["READY=1", "STATUS=tailing /usr/irissys/mgr/messages.log"]
    assert server.receive() == ["STATUS=lag 0 B"]
    assert server.receive() == ["WATCHDOG=1"]
    assert server.receive() == ["STOPPING=1"]


def test_reloading_carries_the_monotonic_clock(systemd_side: tuple[NotifySocket, str]) -> None:
    server, path = systemd_side
    notifier = Notifier(path, clock=lambda: 123_456_789)
    try:
        assert notifier.reloading("re-reading configuration")
        assert notifier.ready()
    finally:
        notifier.close()
    assert server.receive() == [
        "RELOADING=1",
        "MONOTONIC_USEC=123456789",
        "STATUS=re-reading configuration",
    ]
    assert server.receive() == ["READY=1"]


def test_default_clock_is_close_to_clock_monotonic(
    systemd_side: tuple[NotifySocket, str], notifier: Notifier
) -> None:
    server, _ = systemd_side
    low = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    stamp = int(server.receive()[1].removeprefix("MONOTONIC_USEC="))
    assert low <= stamp < low + 5_000_000


def test_status_is_one_bounded_line(
    systemd_side: tuple[NotifySocket, str], notifier: Notifier
) -> None:
    server, _ = systemd_side
    notifier.status("two\nlines  and   " + "x" * 5000)
    (line,) = server.receive()
    assert line.startswith("STATUS=two lines and xxx")
    assert len(line) == len("STATUS=") + 1024


def test_abstract_socket_name(tmp_path: Path) -> None:
    name = f"irisd-test-{uuid.uuid4().hex}"
    server = NotifySocket("\0" + name)
    notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
    try:
        assert notifier.ready()
        assert server.receive() == ["READY=1"]
    finally:
        notifier.close()
        server.close()


def test_without_notify_socket_every_call_is_a_noop() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert not notifier.stopping()
    assert notifier.watchdog_interval() is None


def test_vanished_socket_returns_false_and_does_not_raise(tmp_path: Path) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    try:
        assert notifier.enabled
        assert not notifier.ready()
    finally:
        notifier.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@x", "\0x"),
        ("", None),
        ("vsock:2:1", None),
    ],
)
def test_socket_address_forms(value: str, expected: str | None) -> None:
    assert socket_address(value) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
    ids=["ours", "ours-by-pid", "another-pid", "zero", "garbage", "unset"],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier.from_env(env, pid=4242).watchdog_interval() == expected


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """Any complaint about the unit (unknown key, bad value, missing binary) fails the test."""
    irisd = Path(sys.executable).with_name("irisd")
    assert irisd.exists(), "the package's console script is not installed in this environment"
    text = UNIT.read_text()
    assert "\nExecStart=/usr/local/bin/irisd run\n" in text
    copy = tmp_path / "irisd.service"
    copy.write_text(text.replace("/usr/local/bin/irisd", str(irisd)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    complaints = [
        line for line in (done.stdout + done.stderr).splitlines() if "irisd" in line.lower()
    ]
    assert done.returncode == 0, done.stderr
    assert complaints == []


@pytest.mark.parametrize(
    "line",
    [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "Restart=on-failure",
        "StateDirectory=irisd",
        "ConfigurationDirectory=irisd",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "KillMode=process",
        "ReadWritePaths=-/usr/irissys",
        "RestartPreventExitStatus=78",
    ],
)
def test_unit_keeps_the_settings_the_daemon_relies_on(line: str) -> None:
    assert f"\n{line}\n" in UNIT.read_text()


@pytest.mark.parametrize(
    "key", ["ProtectKernelTunables=", "NoNewPrivileges=", "SystemCallFilter=", "PrivateTmp="]
)
def test_unit_leaves_out_what_remediation_or_iris_needs(key: str) -> None:
    """Only mentioned in comments: each would break sysctl writes or a restarted instance."""
    assert f"\n{key}" not in UNIT.read_text()
