"""Small file helpers shared by the instance process and its control program: the emulator's
state file (written atomically: temp file, fsync, rename, fsync the directory), the host facts under DIR/host, the
licence units in iris.key, and whether the recorded control process is alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

from irisd.emulator.layout import InstancePaths
from irisd.emulator.model import HostFacts
from irisd.errors import EmulatorError
from irisd.shell.durable import fsync_dir

_MEMINFO = re.compile(r"^(\w+):\s+(\d+)", re.MULTILINE)


def atomic_write(path: Path, text: str) -> None:
    """Temp file, fsync, rename, fsync the directory: a crash leaves the old file or the new."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def load_state(paths: InstancePaths) -> dict[str, Any]:
    try:
        data = json.loads(paths.state.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmulatorError(
            f"{paths.root}: not an emulated instance (no mgr/emulator.json)"
        ) from None
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"{paths.state}: unreadable state: {exc}") from exc
    if not isinstance(data, dict):
        raise EmulatorError(f"{paths.state}: unreadable state: not an object")
    return data


def save_state(paths: InstancePaths, state: dict[str, Any]) -> None:
    atomic_write(paths.state, json.dumps(state, indent=2, sort_keys=True) + "\n")


def read_host(paths: InstancePaths) -> HostFacts:
    """The emulated host: memory from host/proc/meminfo, the huge page pool from the sysctl file
    host/proc/sys/vm/nr_hugepages (what a remediation writes), node name and CPUs from host.json."""
    proc = paths.host / "proc"
    meminfo = dict(_MEMINFO.findall(_read(proc / "meminfo")))
    facts = json.loads(_read(paths.host / "host.json") or "{}")
    pages = _read(proc / "sys/vm/nr_hugepages").strip()
    return HostFacts(
        mem_total_mb=int(meminfo.get("MemTotal", "16777216")) // 1024,
        hugepages_total=int(pages) if pages.isdigit() else 0,
        hugepage_size_kb=int(meminfo.get("Hugepagesize", "2048")),
        cpus=int(facts.get("cpus", 2)),
        nodename=str(facts.get("nodename", "localhost")),
    )


def set_sysctl(paths: InstancePaths, key: str, value: str) -> None:
    """Write a kernel parameter under the instance's host root (`vm.nr_hugepages` → file)."""
    target = paths.host / "proc/sys" / key.replace(".", "/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(value + "\n", encoding="utf-8")


def license_units(paths: InstancePaths) -> int:
    found = re.search(r"^LicenseUnits=(\d+)", _read(paths.key), re.MULTILINE)
    return int(found.group(1)) if found else 25


def set_license_units(paths: InstancePaths, units: int) -> None:
    text = re.sub(r"^LicenseUnits=\d+", f"LicenseUnits={units}", _read(paths.key), flags=re.M)
    text = re.sub(r"Concurrent Users:\d+", f"Concurrent Users:{units}", text)
    paths.key.write_text(text, encoding="utf-8")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def running_pid(paths: InstancePaths) -> int | None:
    """The control process's pid if the pid file names a live process, else None."""
    try:
        pid = int(paths.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None
