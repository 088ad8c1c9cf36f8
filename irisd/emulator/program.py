"""The emulated instance's `bin/iris`: IRIS's control program for one instance.

    iris list [INSTANCE]              the `Configuration 'NAME'` block (FACTS §4.1)
    iris qlist [INSTANCE]             one line, 13 caret-delimited fields (FACTS §4.2)
    iris start INSTANCE [quietly]     start; "IRIS is already running. Cannot start." if it is
    iris stop INSTANCE [quietly] [restart] [bypass]
                                      graceful stop (users waited for up to ShutdownTimeout)
    iris force INSTANCE [quietly]     kill the instance outright; recovery runs at next start
    iris merge INSTANCE FILE          configuration merge into the running instance
    iris help

Exit codes: 0 success, 1 failure (IRIS documents none; isclib treats non-zero as failure).
There are no dialogs: `stop` without `quietly` behaves as with it, since the emulator has no
users to broadcast to.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from irisd.core import cpf
from irisd.emulator import control
from irisd.emulator.layout import InstancePaths
from irisd.emulator.sequences import VERSION_ID
from irisd.errors import EmulatorError

USAGE = """usage:
  iris list [<instance>]
  iris qlist [<instance>]
  iris start <instance> [quietly]
  iris stop <instance> [quietly] [restart] [bypass]
  iris force <instance> [quietly]
  iris merge <instance> <merge_file>
  iris help
"""


def _when(iso: str | None) -> str:
    at = datetime.fromisoformat(iso) if iso else datetime.now()
    return f"{at:%a %b} {at.day} {at:%H:%M:%S %Y}"


def _facts(paths: InstancePaths) -> dict[str, Any]:
    state = control.status(paths.root)
    doc = cpf.parse(paths.cpf.read_text(encoding="utf-8"))
    running = state.get("status") == "running"
    return {
        "name": str(state.get("name", "IRIS")),
        "status": f"running, since {_when(state.get('since'))}" if running
        else f"down, last used {_when(state.get('last_used'))}",
        "state": str(state.get("health") or "ok") if running else "",
        "ss": doc.get("Startup", "DefaultPort") or "",
        "web": doc.get("Startup", "WebServerPort") or "",
    }  # fmt: skip


def render_qlist(paths: InstancePaths) -> str:
    f = _facts(paths)
    fields = [f["name"], paths.install, VERSION_ID, f["status"], "iris.cpf", f["ss"], f["web"],
              f["ss"], f["state"], "IRIS", "", "", paths.install]  # fmt: skip
    return "^".join(fields) + "\n"


def render_list(paths: InstancePaths) -> str:
    f = _facts(paths)
    out = [
        "",
        f"Configuration '{f['name']}'   (default)",
        f"    directory:    {paths.install}",
        f"    versionid:    {VERSION_ID}",
        f"    datadir:      {paths.install}",
        f"    conf file:    iris.cpf  (SuperServer port = {f['ss']}, WebServer = {f['web']})",
        f"    status:       {f['status']}",
    ]
    if f["state"]:
        out.append(f"    state:        {f['state']}")
    out.append("    product:      InterSystems IRIS")
    return "\n".join(out) + "\n"


def main(argv: list[str], root: Path) -> int:
    paths = InstancePaths(root)
    if not argv or argv[0] in ("help", "-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 1
    command, rest = argv[0], argv[1:]
    name = str(control.status(root).get("name", "IRIS"))
    if rest and rest[0].upper() != name.upper():
        sys.stderr.write(f"Instance '{rest[0]}' not found\n")  # wording ours
        return 1
    try:
        return _dispatch(command, rest, paths, name)
    except EmulatorError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1


def _dispatch(command: str, rest: list[str], paths: InstancePaths, name: str) -> int:
    if command == "qlist":
        sys.stdout.write(render_qlist(paths))
        return 0
    if command == "list":
        sys.stdout.write(render_list(paths))
        return 0
    if not rest:
        sys.stderr.write(USAGE)
        return 1
    options = {word.lower() for word in rest[1:]}
    handler = {"start": _start, "stop": _stop, "force": _force, "merge": _merge}.get(command)
    if handler is None:
        sys.stderr.write(USAGE)
        return 1
    return handler(paths, name, rest, options)


def _start(paths: InstancePaths, name: str, rest: list[str], options: set[str]) -> int:
    if control.status(paths.root).get("status") == "running":
        sys.stdout.write(f"{name} is already running. Cannot start.\n")
        return 1
    sys.stdout.write(f"Starting {name}\nStarting Control Process\n")
    try:
        control.start(paths.root)
    except EmulatorError as exc:
        sys.stdout.write(f"{exc}\n** Startup aborted **\n")
        return 1
    state = control.status(paths.root)
    sys.stdout.write(f"{state.get('allocation', '')}\n")
    return 0


def _stop(paths: InstancePaths, name: str, rest: list[str], options: set[str]) -> int:
    if control.status(paths.root).get("status") != "running":
        sys.stderr.write(f"{name} is not running\n")  # wording ours
        return 1
    timeout = _shutdown_budget(paths)
    control.stop(paths.root, timeout=timeout)
    if "restart" in options:
        return _start(paths, name, rest, options)
    return 0


def _shutdown_budget(paths: InstancePaths) -> float:
    doc = cpf.parse(paths.cpf.read_text(encoding="utf-8"))
    seconds = int(doc.get("Startup", "ShutdownTimeout") or 300)
    speed = float(control.status(paths.root).get("speed", 1.0))
    return seconds / speed + 30


def _force(paths: InstancePaths, name: str, rest: list[str], options: set[str]) -> int:
    control.force(paths.root)
    return 0


def _merge(paths: InstancePaths, name: str, rest: list[str], options: set[str]) -> int:
    if len(rest) < 2:
        sys.stderr.write(USAGE)
        return 1
    result = control.merge(paths.root, Path(rest[1]))
    if not result.get("ok"):
        for problem in result.get("problems", [result.get("error", "merge failed")]):
            sys.stderr.write(f"{problem}\n")
        return 1
    sys.stdout.write(f"{name.upper()} Merge completed successfully\n")
    return 0
