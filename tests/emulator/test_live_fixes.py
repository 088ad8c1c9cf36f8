"""Every scenario, played live by a real instance: its fix, carried out through the real
`bin/iris`, stops the root cause recurring; its wrong fix does not.

The remedy applied is the registry's own (`Scenario.fix` / `Scenario.wrong_fix`), step by step as
an operator would carry it out: CPF values and `[Actions]` in a merge file through `bin/iris
merge`; kernel parameters written under DIR/host (the emulated /proc/sys the instance reads at
start); a new licence key file; the ECP data server brought back by listening on its port; and
`bin/iris stop IRIS restart`, or `bin/iris force` then `bin/iris start`, when the remedy says
so. The log is judged from the moment the remedy took effect (the new run's recovery banner
after a restart, else two whole ticks after the change) over the next WATCH_TICKS ticks.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from irisd.core import cpf
from irisd.core.pipeline import classify_text
from irisd.emulator import control, files, scenarios
from irisd.emulator.layout import InstancePaths, init_instance
from irisd.emulator.world import Remedy
from irisd.errors import EmulatorError
from irisd.rules import default_classifier

pytestmark = pytest.mark.slow
SPEED = 400.0  # a 5 s tick every 12.5 ms
WATCH_TICKS = 8  # covers the write daemon's every-third-tick alert more than twice
FAILING = [name for name in scenarios.names() if name != "normal_load"]


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[InstancePaths]:
    paths = init_instance(tmp_path / "iris")
    yield paths
    try:
        control.stop(paths.root, timeout=20)
    except EmulatorError:
        control.force(paths.root)


@pytest.mark.parametrize("which", ["fix", "wrong_fix"])
@pytest.mark.parametrize("name", FAILING)
def test_remedy_played_live(instance: InstancePaths, tmp_path: Path, name: str, which: str) -> None:
    scenario = scenarios.SCENARIOS[name]
    control.start(instance.root, scenario=name, speed=SPEED)
    _wait(lambda: scenario.code in _codes(instance.messages.read_bytes()), "root cause logged")
    remedy: Remedy = getattr(scenario, which)
    with _carry_out(instance, remedy, tmp_path) as cut:
        _watch(instance, scenario, WATCH_TICKS)
        codes = _codes(instance.messages.read_bytes()[cut:])
        failing = control.status(instance.root)["failing"]
    if which == "fix":
        assert scenario.code not in codes, remedy.description
        assert failing is False
    else:
        assert scenario.code in codes, remedy.description
        assert failing is True


@contextlib.contextmanager
def _carry_out(paths: InstancePaths, remedy: Remedy, tmp: Path) -> Iterator[int]:
    """Apply `remedy`; yield the log offset from which it is in effect (an external fix such as
    a data server stays in place until the block ends)."""
    with contextlib.ExitStack() as stack:
        if remedy.cpf or remedy.actions:
            _iris(paths, "merge", "IRIS", str(_merge_file(tmp, remedy)))
        for key, value in remedy.host:
            files.set_sysctl(paths, key, value)
        if remedy.license_units is not None:
            files.set_license_units(paths, remedy.license_units)
        if remedy.external:
            stack.enter_context(_data_server(paths))
        if remedy.force:
            _iris(paths, "force", "IRIS")
            _iris(paths, "start", "IRIS")
        elif remedy.restart:
            _iris(paths, "stop", "IRIS", "restart")
        yield _in_effect(paths, restarted=remedy.restart or remedy.force)


def _merge_file(tmp: Path, remedy: Remedy) -> Path:
    sections: dict[str, list[str]] = {}
    for section, name, value in remedy.cpf:
        sections.setdefault(section, []).append(f"{name}={value}")
    if remedy.actions:
        sections["Actions"] = list(remedy.actions)
    path = tmp / "remedy.merge"
    path.write_text(
        "".join(f"[{s}]\n" + "".join(f"{v}\n" for v in vs) for s, vs in sections.items())
    )
    return path


def _iris(paths: InstancePaths, *args: str) -> None:
    done = subprocess.run(
        [str(paths.program), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)


@contextlib.contextmanager
def _data_server(paths: InstancePaths) -> Iterator[None]:
    """The ECP data server back: something listening where [ECPServers] points."""
    host, port = cpf.parse(paths.cpf.read_text()).get("ECPServers", "DATA1").split(",")  # type: ignore[union-attr]
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, int(port)))
        server.listen(256)  # the instance only probes: the kernel's handshake is enough
        yield


def _in_effect(paths: InstancePaths, *, restarted: bool) -> int:
    data = paths.messages.read_bytes()
    if restarted:  # everything the new run wrote follows its recovery banner
        return data.rindex(b"*** Recovery started at")
    _watch(paths, None, 2)  # the tick in flight at the change may still be the old world's
    return paths.messages.stat().st_size


def _watch(paths: InstancePaths, scenario: scenarios.Scenario | None, ticks: int) -> None:
    interval = (scenario or scenarios.SCENARIOS[_state(paths)["scenario"]]).interval
    start = float(_state(paths).get("scenario_elapsed", 0.0))
    target = start + ticks * interval
    _wait(lambda: float(_state(paths).get("scenario_elapsed", 0.0)) >= target, f"{ticks} ticks")


def _state(paths: InstancePaths) -> dict[str, Any]:
    return control.status(paths.root)


def _codes(data: bytes) -> set[str]:
    return {
        c.classification.code
        for c in classify_text(data.decode("utf-8", "replace"), classifier=default_classifier())
    }


def _wait(ok: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout:.0f} s: {what}")
        time.sleep(0.01)
