"""The emulated instance as a real process: start, stop, restart, force, merge, bad CPF, ports."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from pathlib import Path

import pytest

from irisd.core.pipeline import classify_text
from irisd.emulator import control, files
from irisd.emulator.layout import InstancePaths, init_instance
from irisd.errors import ControlError, EmulatorError
from irisd.rules import default_classifier
from irisd.shell.iris_control import IrisControl

pytestmark = pytest.mark.slow
SPEED = 200.0


@pytest.fixture
def inst(tmp_path: Path):  # type: ignore[no-untyped-def]
    paths = init_instance(tmp_path / "iris")
    state = files.load_state(paths)
    state["speed"] = SPEED  # what `emulator start --speed` records; bin/iris start reuses it
    files.save_state(paths, state)
    yield paths
    try:
        control.stop(paths.root, timeout=20)
    except EmulatorError:
        control.force(paths.root)


def _codes(paths: InstancePaths) -> list[str]:
    return [
        c.classification.code
        for c in classify_text(paths.messages.read_text(), classifier=default_classifier())
    ]


async def test_start_and_stop_are_real_and_qlist_is_parsed_by_irisd(inst: InstancePaths) -> None:
    iris = IrisControl(inst.program, timeout=30)
    assert (await iris.status("IRIS")).status == "down"
    status = await iris.start("IRIS")
    assert status.running
    assert status.state == "ok"
    pid = int(inst.pid.read_text())
    assert inst.ids.exists()
    listed = (await iris.list())[0]
    assert listed.status == "running"
    assert listed.ports == (status.superserver_port, status.web_port)
    down = await iris.stop("IRIS")
    assert down.status == "down"
    assert control.wait_gone(pid, 5)
    assert not inst.pid.exists()
    assert not inst.ids.exists()
    codes = _codes(inst)
    assert "lifecycle.startup" in codes
    assert codes[-1] == "lifecycle.shutdown"
    assert inst.messages.read_text().rstrip().endswith("Shutdown complete")


async def test_starting_twice_fails_the_iris_way(inst: InstancePaths) -> None:
    iris = IrisControl(inst.program, timeout=30)
    await iris.start("IRIS")
    with pytest.raises(ControlError, match="already running"):
        await iris.run("start", "IRIS", "quietly")


async def test_stop_restart_comes_back_with_a_new_process(inst: InstancePaths) -> None:
    iris = IrisControl(inst.program, timeout=30)
    control.start(inst.root, speed=SPEED)
    first = int(inst.pid.read_text())
    status = await iris.stop("IRIS", restart=True)
    assert status.running
    assert int(inst.pid.read_text()) != first
    text = inst.messages.read_text()
    assert "*** Recovery started at" in text
    assert "Graceful system shutdown, journal restore not required" in text


def test_invalid_cpf_value_fails_start_up_the_iris_way(inst: InstancePaths) -> None:
    text = inst.cpf.read_text().replace("gmheap=0", "gmheap=12")
    inst.cpf.write_text(text + "")
    with pytest.raises(EmulatorError, match="Parsing CPF file"):
        control.start(inst.root, speed=SPEED)
    log = inst.messages.read_text()
    assert "3 [Utility.Event] Property 'Config.config::gmheap(" in log
    assert f"Error: Parsing CPF file {inst.cpf.resolve()} - Shutting down the system" in log
    assert "config.cpf_error" in _codes(inst)
    assert control.status(inst.root)["status"] == "down"
    assert not inst.pid.exists()


def test_duplicate_and_unknown_parameters_are_reported(inst: InstancePaths) -> None:
    text = inst.cpf.read_text().replace("memlock=0\n", "memlock=0\nmemlock=0\nDBMSSecurity=1\n")
    inst.cpf.write_text(text)
    with pytest.raises(EmulatorError):
        control.start(inst.root, speed=SPEED)
    log = inst.messages.read_text()
    assert "Duplicate line detected, LINE:'memlock=0' at line" in log
    assert "Invalid parameter name 'DBMSSecurity', LINE:'DBMSSecurity=1' at line" in log


def test_bin_iris_start_reports_failure_with_a_non_zero_exit(inst: InstancePaths) -> None:
    inst.cpf.write_text(inst.cpf.read_text().replace("[Databases]\n", "[Databases]\nX\n", 1)
                        .replace("IRISSECURITY=", "NOTSECURITY="))  # fmt: skip
    done = asyncio.run(IrisControl(inst.program).run("start", "IRIS", check=False))
    assert done.exit_code == 1
    assert "** Startup aborted **" in done.stdout
    assert "Required database IRISSECURITY is not defined" in inst.messages.read_text()


def test_superserver_connections_count_as_sessions_and_stop_waits(inst: InstancePaths) -> None:
    control.start(inst.root, speed=SPEED)
    port = int(control.status(inst.root).get("pid") and _ports(inst)[0])
    with socket.create_connection(("127.0.0.1", port)):
        state = _wait(inst, lambda s: s.get("sessions") == 1)
        assert state["sessions"] == 1
    control.stop(inst.root, timeout=30)
    assert "Shutdown complete" in inst.messages.read_text()


def test_monitor_endpoints(inst: InstancePaths) -> None:
    control.start(inst.root, scenario="lock_table_full", speed=SPEED)
    control.wait_scenario(inst.root, timeout=30)
    web = _ports(inst)[1]
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{web}/api/monitor/metrics").read().decode()
    assert "iris_system_alerts " in metrics
    assert "iris_license_percent_used" in metrics
    alerts = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{web}/api/monitor/alerts").read())
    assert alerts
    assert {"time", "severity", "message"} <= set(alerts[0])
    again = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{web}/api/monitor/alerts").read())
    assert len(again) < len(alerts)  # reading consumes them
    assert "Lock table full" in inst.alerts.read_text()


def test_lock_table_full_stops_once_locksiz_is_merged(inst: InstancePaths, tmp_path: Path) -> None:
    control.start(inst.root, scenario="lock_table_full", speed=SPEED)
    _wait(inst, lambda s: s.get("failing") is True)
    wrong = tmp_path / "wrong.cpf"
    wrong.write_text("[config]\ngmheap=1048576\n")
    result = control.merge(inst.root, wrong)
    assert result["ok"]
    assert result["pending"] == ["[config] gmheap=1048576"]
    assert control.status(inst.root)["failing"] is True
    fix = tmp_path / "fix.cpf"
    fix.write_text("[config]\nlocksiz=67108864\n")
    done = asyncio.run(IrisControl(inst.program).merge("IRIS", fix))
    assert "Merge completed successfully" in done.stdout
    assert "locksiz=67108864" in inst.cpf.read_text()
    _wait(inst, lambda s: s.get("failing") is False)
    size = len(inst.messages.read_text())
    _wait(inst, lambda s: s.get("scenario_elapsed", 0) > 60)
    assert "Lock table full" not in inst.messages.read_text()[size:]


def test_force_then_start_recovers_and_reports_the_abnormal_shutdown(inst: InstancePaths) -> None:
    control.start(inst.root, speed=SPEED)
    pid = int(inst.pid.read_text())
    asyncio.run(IrisControl(inst.program).force("IRIS"))
    assert control.wait_gone(pid, 1)
    assert "irisforce killed" in inst.messages.read_text()
    control.start(inst.root, speed=SPEED)
    assert "Previous system shutdown was abnormal" in inst.messages.read_text()


def test_messages_log_rolls_over_at_max_console_log_size(
    inst: InstancePaths, tmp_path: Path
) -> None:
    control.start(inst.root, speed=SPEED)
    inst.messages.write_text("")  # shrink nothing: pad the live file past 1 MB instead
    with open(inst.messages, "a") as log:
        log.write("x" * (1024 * 1024 + 10) + "\n")
    merge = tmp_path / "m.cpf"
    merge.write_text("[Startup]\nMaxConsoleLogSize=1\n")
    assert control.merge(inst.root, merge)["ok"]
    olds = _wait_files(inst)
    assert olds[0].name.startswith("messages.old_")
    assert inst.messages.stat().st_size < 1024 * 1024


def test_inject_merges_the_scenario_set_up_into_the_running_instance(inst: InstancePaths) -> None:
    """Dynamic set-up takes effect at once, iris.cpf is rewritten and the merge is logged."""
    control.start(inst.root, speed=SPEED)
    result = control.inject(inst.root, "lock_table_full")
    assert (result["ok"], result["applied"], result["pending"]) == (
        True, ["[config] locksiz=16777216"], [])  # fmt: skip
    assert "locksiz=16777216" in inst.cpf.read_text()
    log = inst.messages.read_text()
    merge_file = (inst.mgr / "scenario-lock_table_full.merge").resolve()
    assert f"Updating configuration information from {merge_file}" in log
    assert "[config] locksiz changed from '0' to '16777216', active now" in log
    _wait(inst, lambda s: s.get("failing") is True and s["scenario"] == "lock_table_full")
    assert control.request(inst.root, "GET", "/status")["active"]["locksiz"] == 16777216
    assert "lock.table_full" in _codes(inst)


async def test_inject_leaves_restart_only_set_up_for_the_next_start(inst: InstancePaths) -> None:
    """hugepages_fallback injected: globals pending, the huge page pool written under DIR/host;
    nothing falls back until the restart, then start-up does."""
    iris = IrisControl(inst.program, timeout=30)
    control.start(inst.root, speed=SPEED)
    result = control.inject(inst.root, "hugepages_fallback")
    assert result["pending"] == ["[config] globals=0,0,2048,0,0,0"]
    assert result["host"] == ["sysctl vm.nr_hugepages=600 (read at the next start)"]
    assert (inst.host / "proc/sys/vm/nr_hugepages").read_text() == "600\n"
    assert "globals changed from '0,0,0,0,0,0' to '0,0,2048,0,0,0', restart required" in (
        inst.messages.read_text())  # fmt: skip
    assert "memory.hugepages_fallback" not in _codes(inst)
    await iris.stop("IRIS", restart=True)
    assert "memory.hugepages_fallback" in _codes(inst)


def test_inject_needs_a_running_instance_and_a_known_scenario(inst: InstancePaths) -> None:
    with pytest.raises(EmulatorError, match="not running"):
        control.inject(inst.root, "lock_table_full")
    with pytest.raises(EmulatorError, match="unknown scenario 'nope'"):
        control.inject(inst.root, "nope")
    assert "locksiz=16777216" not in inst.cpf.read_text()


def _ports(paths: InstancePaths) -> tuple[int, int]:
    from irisd.core import cpf

    doc = cpf.parse(paths.cpf.read_text())
    return int(doc.get("Startup", "DefaultPort") or 0), int(
        doc.get("Startup", "WebServerPort") or 0
    )


def _wait(paths: InstancePaths, ok, timeout: float = 20.0) -> dict:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = control.status(paths.root)
        if ok(state):
            return state
        time.sleep(0.02)
    raise AssertionError(f"condition not met: {control.status(paths.root)}")


def _wait_files(paths: InstancePaths) -> list[Path]:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        olds = sorted(paths.mgr.glob("messages.old_*"))
        if olds:
            return olds
        time.sleep(0.02)
    raise AssertionError("no rollover")
