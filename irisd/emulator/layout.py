"""The on-disk layout of an emulated instance, and `init_instance` that creates one.

DIR/iris.cpf                 the CPF, in IRIS's syntax (from data/iris.cpf.in)
DIR/bin/iris                 the control program (a script running irisd.emulator.program)
DIR/mgr/messages.log         the console log; alerts.log beside it (Log Monitor)
DIR/mgr/journal/             journal files;  DIR/mgr/<db>/ one directory per database
DIR/mgr/iris.key             the licence key the instance reads at start
DIR/mgr/iris.ids, iris.pid   present while the instance runs (IRIS's marker, our pid file)
DIR/mgr/emulator.json        the emulator's own state (status, since, scenario, health)
DIR/host/                    the host the instance believes it runs on: proc/meminfo,
                             proc/sys/vm/nr_hugepages (an injectable /proc root), host.json
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from irisd.errors import EmulatorError

DATABASE_DIRS = (
    "irislib", "iristemp", "irisaudit", "irislocaldata", "irissecurity", "irismetrics", "enslib",
    "user",
)  # fmt: skip
_UNIX_SOCKET_MAX = 100


@dataclass(frozen=True, slots=True)
class InstancePaths:
    root: Path

    @property
    def cpf(self) -> Path:
        return self.root / "iris.cpf"

    @property
    def mgr(self) -> Path:
        return self.root / "mgr"

    @property
    def messages(self) -> Path:
        return self.mgr / "messages.log"

    @property
    def alerts(self) -> Path:
        return self.mgr / "alerts.log"

    @property
    def journal(self) -> Path:
        return self.mgr / "journal"

    @property
    def state(self) -> Path:
        return self.mgr / "emulator.json"

    @property
    def pid(self) -> Path:
        return self.mgr / "iris.pid"

    @property
    def ids(self) -> Path:
        return self.mgr / "iris.ids"

    @property
    def key(self) -> Path:
        return self.mgr / "iris.key"

    @property
    def program(self) -> Path:
        return self.root / "bin" / "iris"

    @property
    def host(self) -> Path:
        return self.root / "host"

    @property
    def stderr(self) -> Path:
        return self.mgr / "emulator.err"

    @property
    def control_socket(self) -> Path:
        """The instance's private control socket (bin/iris talks to it). Unix sockets have a
        short path limit, so a deep directory gets a socket under the temp dir instead."""
        local = self.mgr / "iris.ctl"
        if len(str(local)) < _UNIX_SOCKET_MAX:
            return local
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"irisd-emu-{digest}.ctl"

    @property
    def install(self) -> str:
        """The install directory as IRIS prints it, with a trailing slash."""
        return str(self.root.resolve()) + "/"


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now; good enough to give each instance its own."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def cpf_template() -> str:
    return resources.files("irisd.emulator").joinpath("data/iris.cpf.in").read_text("utf-8")


def render_cpf(install: str, superserver_port: int, web_port: int) -> str:
    return (
        cpf_template()
        .replace("@MGR@", install + "mgr/")
        .replace("@SUPERSERVER_PORT@", str(superserver_port))
        .replace("@WEB_PORT@", str(web_port))
    )


def init_instance(
    path: Path,
    *,
    name: str = "IRIS",
    superserver_port: int | None = None,
    web_port: int | None = None,
    mem_total_mb: int = 16384,
    hugepages: int = 0,
) -> InstancePaths:
    """Lay out an instance in `path` (created; must be empty or absent). Ports default to free
    loopback ports picked now, so instances made in parallel never collide."""
    paths = InstancePaths(path)
    _check_new(path, name)
    existed = path.exists()
    try:
        _lay_out(paths, superserver_port or free_port(), web_port or free_port())
        _write_host(paths, mem_total_mb, hugepages)
        state = {"name": name, "status": "down", "last_used": None, "clean": True, "starts": 0}
        paths.state.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        _undo(path, existed)  # the directory was empty or absent: all in it is ours
        raise EmulatorError(f"{path}: cannot lay out an instance: {exc.strerror}") from None
    return paths


def _check_new(path: Path, name: str) -> None:
    if path.exists() and not path.is_dir():
        raise EmulatorError(f"{path}: not a directory")
    try:
        if path.exists() and any(path.iterdir()):
            raise EmulatorError(f"{path}: not empty; an instance needs a directory of its own")
    except OSError as exc:
        raise EmulatorError(f"{path}: {exc.strerror}") from None
    if not name.isalnum() or len(name) > 32:
        raise EmulatorError(f"instance name {name!r}: letters and digits only, at most 32")


def _lay_out(paths: InstancePaths, superserver_port: int, web_port: int) -> None:
    for directory in (paths.mgr, paths.journal, paths.root / "bin", paths.host / "proc/sys/vm"):
        directory.mkdir(parents=True, exist_ok=True)
    for db in DATABASE_DIRS:
        (paths.mgr / db).mkdir(exist_ok=True)
    paths.cpf.write_text(render_cpf(paths.install, superserver_port, web_port), encoding="utf-8")
    paths.messages.touch()
    paths.alerts.touch()
    _write_key(paths)
    _write_program(paths)


def _undo(path: Path, existed: bool) -> None:
    if not existed:
        shutil.rmtree(path, ignore_errors=True)
        return
    for child in path.iterdir():
        shutil.rmtree(child, ignore_errors=True)


def _write_key(paths: InstancePaths) -> None:
    # The emulator's licence: a key file in IRIS's key-file shape with our own values.
    paths.key.write_text(
        "[ConfigFile]\nFileType=License 5.0\n\n[License]\n"
        "LicenseCapacity=InterSystems IRIS Server for x86-64 (Emulated):8, Concurrent Users:25\n"
        "LicenseUnits=25\nCustomerName=Emulated instance\n",
        encoding="utf-8",
    )


def _write_host(paths: InstancePaths, mem_total_mb: int, hugepages: int) -> None:
    proc = paths.host / "proc"
    (proc / "meminfo").write_text(
        f"MemTotal:       {mem_total_mb * 1024} kB\n"
        f"HugePages_Total:   {hugepages}\nHugePages_Free:    {hugepages}\n"
        "Hugepagesize:       2048 kB\n",
        encoding="utf-8",
    )
    (proc / "sys/vm/nr_hugepages").write_text(f"{hugepages}\n", encoding="utf-8")
    facts = {"nodename": socket.gethostname(), "cpus": os.cpu_count() or 2}
    (paths.host / "host.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")


def _write_program(paths: InstancePaths) -> None:
    script = (
        f"#!{sys.executable}\n"
        '"""The emulated instance\'s control program (see irisd.emulator.program)."""\n'
        "import sys\n"
        "from pathlib import Path\n\n"
        "from irisd.emulator.program import main\n\n"
        "sys.exit(main(sys.argv[1:], Path(__file__).resolve().parent.parent))\n"
    )
    paths.program.write_text(script, encoding="utf-8")
    paths.program.chmod(0o755)
