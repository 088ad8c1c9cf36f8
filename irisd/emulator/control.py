"""Python API to drive an emulated instance: arm a scenario, start, wait, merge, stop, force.

    from irisd.emulator.layout import init_instance
    from irisd.emulator import control

    paths = init_instance(tmp / "iris", name="IRIS")
    control.start(paths.root, scenario="lock_table_full", speed=50)
    control.wait_scenario(paths.root, timeout=30)
    control.stop(paths.root)          # returns once the process is really gone

`start` spawns the control process detached (it double-forks) and waits on a pipe for its
"running" or "failed" report: no polling for readiness. Waiting for a scenario or for the
process to vanish polls the state file and the pid, since neither offers an event to await.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irisd.core import cpf
from irisd.emulator import files, scenarios
from irisd.emulator.layout import InstancePaths, cpf_template, free_port
from irisd.emulator.logfmt import render
from irisd.emulator.mergefile import MergeRefused, database_limits, plan_merge
from irisd.emulator.params import known_parameters
from irisd.emulator.sequences import irisforce_line
from irisd.errors import EmulatorError

_POLL = 0.02


@dataclass(frozen=True, slots=True)
class Started:
    pid: int
    armed: tuple[str, ...]  # what arming the scenario changed


def arm(root: Path, name: str) -> tuple[str, ...]:
    """Make `name` the instance's scenario and apply its set-up to iris.cpf, the host and the
    licence key (a down instance; a running one takes `inject`). Returns what changed."""
    scenario = scenarios.get(name)
    if scenario is None:
        raise EmulatorError(f"unknown scenario {name!r}; known: {', '.join(scenarios.names())}")
    paths = InstancePaths(root)
    state = files.load_state(paths)
    doc = cpf.parse(paths.cpf.read_text(encoding="utf-8"))
    done: list[str] = []
    for section, param, value in scenario.setup:
        concrete = value.replace(scenarios.FREE_PORT, str(free_port()))
        doc = cpf.set_value(doc, section, param, concrete)
        done.append(f"[{section}] {param}={concrete}")
    files.atomic_write(paths.cpf, cpf.render(doc))
    for key, value in scenario.host_setup:
        files.set_sysctl(paths, key, value)
        done.append(f"sysctl {key}={value}")
    if scenario.license_units is not None:
        files.set_license_units(paths, scenario.license_units)
    state.update(scenario=name, armed_run=int(state.get("starts", 0)) + 1, scenario_elapsed=0.0,
                 scenario_done=False, databases=dict(scenario.databases))  # fmt: skip
    files.save_state(paths, state)
    return tuple(done)


def start(
    root: Path,
    *,
    scenario: str | None = None,
    speed: float | None = None,
    timeout: float = 30.0,
    user: str = "irisowner",
) -> Started:
    """Start the instance and return once logons are enabled; raise EmulatorError if start-up
    fails (the reason IRIS gave is in the message) or the instance is already running."""
    paths = InstancePaths(root)
    state = files.load_state(paths)
    if files.running_pid(paths):
        raise EmulatorError(f"{state.get('name', 'IRIS')} is already running. Cannot start.")
    armed = arm(root, scenario) if scenario and scenario != state.get("scenario") else ()
    if speed is not None:
        state = files.load_state(paths)
        state["speed"] = speed
        files.save_state(paths, state)
    speed = float(files.load_state(paths).get("speed", 1.0))
    report = _spawn(paths, speed, user, timeout)
    if not report.startswith("running"):
        raise EmulatorError(report.removeprefix("failed ").strip() or "start-up failed")
    return Started(int(report.split()[1]), armed)


def _spawn(paths: InstancePaths, speed: float, user: str, timeout: float) -> str:
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "irisd.emulator.instance", str(paths.root), "--speed",
           str(speed), "--user", user, "--ready-fd", str(write_fd), "--detach"]  # fmt: skip
    with subprocess.Popen(cmd, pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as launcher:  # fmt: skip
        os.close(write_fd)
        launcher.wait(timeout)
    try:
        return _read_report(read_fd, timeout)
    finally:
        os.close(read_fd)


def _read_report(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return "failed start-up did not report within the timeout"
        chunk = os.read(fd, 4096)
        if not chunk:
            return "failed the control process exited during start-up"
        data += chunk
    return data.decode().strip()


def status(root: Path) -> dict[str, Any]:
    """The state file, with `status` corrected to "down" when the recorded process is gone."""
    paths = InstancePaths(root)
    state = files.load_state(paths)
    if state.get("status") != "down" and files.running_pid(paths) is None:
        state["status"] = "down"
    return state


def request(root: Path, method: str, target: str, body: dict[str, Any] | None = None,
            timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
    """Call the running instance's control socket; EmulatorError when it is not running."""
    conn = _UnixHTTP(str(InstancePaths(root).control_socket), timeout)
    try:
        conn.request(method, target, body=json.dumps(body or {}),
                     headers={"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        data: dict[str, Any] = json.loads(response.read() or b"{}")
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"{root}: the instance is not running ({exc})") from exc
    finally:
        conn.close()
    return data


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def stop(root: Path, *, timeout: float = 60.0, user: str = "irisowner") -> None:
    """Gracefully stop; returns once the control process is gone (its pid no longer exists)."""
    paths = InstancePaths(root)
    pid = files.running_pid(paths)
    if pid is None:
        return
    try:
        request(root, "POST", "/stop", {"user": user}, timeout=5.0)
    except EmulatorError:
        os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, timeout):
        raise EmulatorError(f"{root}: still running {timeout:.0f} s after the stop request")


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while files.pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL)
    return True


def force(root: Path) -> int:
    """`iris force`: kill the control process outright, as irisforce does, and log it."""
    paths = InstancePaths(root)
    state = files.load_state(paths)
    pid = files.running_pid(paths)
    killed = int(state.get("sessions", 0))
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 10.0)
    for leftover in (paths.pid, paths.ids, paths.control_socket):
        leftover.unlink(missing_ok=True)
    with open(paths.messages, "a", encoding="utf-8") as log:
        log.write(render(irisforce_line(os.getpid(), killed), _now()))
    state.update(status="down", clean=pid is None and bool(state.get("clean", True)),
                 last_used=_now().isoformat(), pid=None, sessions=0)  # fmt: skip
    files.save_state(paths, state)
    return killed


def _now() -> Any:
    from irisd.emulator.instance import local_now

    return local_now()


def wait_scenario(root: Path, *, timeout: float = 60.0) -> dict[str, Any]:
    """Block until the armed scenario has played its onset; returns the final status."""
    deadline = time.monotonic() + timeout
    while True:
        state = status(root)
        if state.get("scenario_done"):
            return state
        if state.get("status") == "down":
            raise EmulatorError(f"{root}: the instance is down; the scenario cannot finish")
        if time.monotonic() > deadline:
            raise EmulatorError(f"{root}: scenario not finished after {timeout:.0f} s")
        time.sleep(_POLL)


def merge(root: Path, merge_file: Path) -> dict[str, Any]:
    """`iris merge`: through the running instance, or into iris.cpf alone when it is down."""
    if files.running_pid(InstancePaths(root)) is not None:
        return request(root, "POST", "/merge", {"file": str(merge_file.resolve())})
    return _merge_down(root, merge_file)


def _merge_down(root: Path, merge_file: Path) -> dict[str, Any]:
    paths = InstancePaths(root)
    try:
        patch = cpf.parse(merge_file.read_text(encoding="utf-8"))
    except OSError as exc:
        return {"ok": False, "error": f"{merge_file}: {exc.strerror}"}
    doc = cpf.parse(paths.cpf.read_text(encoding="utf-8"))
    known = known_parameters(cpf.parse(cpf_template()))
    plan = plan_merge(doc, doc, patch, known=known)
    if isinstance(plan, MergeRefused):
        return {"ok": False, "problems": [p.message for p in plan.problems]}
    files.atomic_write(paths.cpf, cpf.render(plan.document))
    state = files.load_state(paths)
    state["databases"] = database_limits(plan.actions, state.get("databases", {}))
    files.save_state(paths, state)
    changed = [f"[{c.section}] {c.name}={c.new}" for c in (*plan.applied, *plan.pending)]
    return {
        "ok": True,
        "applied": [],
        "pending": changed,
        "actions": [a.operation for a in plan.actions],
    }


def inject(root: Path, name: str) -> dict[str, Any]:
    """Switch a running instance to scenario `name`, its set-up applied the way an operator
    would apply it: the CPF part as a configuration merge (dynamic parameters at once, the others
    pending for the next start, iris.cpf rewritten and the merge logged in messages.log), host
    facts under DIR/host and the licence key file (both read at the next start). A merge the
    instance refuses raises EmulatorError and leaves the scenario as it was."""
    scenario = scenarios.get(name)
    if scenario is None:
        raise EmulatorError(f"unknown scenario {name!r}; known: {', '.join(scenarios.names())}")
    paths = InstancePaths(root)
    if files.running_pid(paths) is None:
        raise EmulatorError(f"{root}: the instance is not running; to arm {name} on a down "
                            f"instance use `irisd emulator start {root} --scenario {name}`")  # fmt: skip
    merged: dict[str, Any] = {"applied": [], "pending": []}
    if scenario.setup:
        merged = merge(root, _setup_merge_file(paths, scenario))
        if not merged.get("ok"):
            why = "; ".join(merged.get("problems", [])) or merged.get("error", "refused")
            raise EmulatorError(f"{name}: the instance refused the set-up merge: {why}")
    host = [_arm_host(paths, key, value) for key, value in scenario.host_setup]
    if scenario.license_units is not None:
        files.set_license_units(paths, scenario.license_units)
        host.append(f"iris.key LicenseUnits={scenario.license_units} (read at the next start)")
    switched = request(root, "POST", "/inject", {"scenario": name})
    return {**switched, "applied": merged["applied"], "pending": merged["pending"], "host": host}


def _setup_merge_file(paths: InstancePaths, scenario: scenarios.Scenario) -> Path:
    """The scenario's CPF set-up as a merge file in DIR/mgr, kept so the log's reference to it
    can be followed."""
    by_section: dict[str, list[str]] = {}
    for section, param, value in scenario.setup:
        concrete = value.replace(scenarios.FREE_PORT, str(free_port()))
        by_section.setdefault(section, []).append(f"{param}={concrete}\n")
    text = "".join(f"[{section}]\n" + "".join(lines) for section, lines in by_section.items())
    target = paths.mgr / f"scenario-{scenario.name}.merge"
    files.atomic_write(target, text)
    return target


def _arm_host(paths: InstancePaths, key: str, value: str) -> str:
    files.set_sysctl(paths, key, value)
    return f"sysctl {key}={value} (read at the next start)"
