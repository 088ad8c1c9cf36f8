"""The emulated instance's control process: `python -m irisd.emulator.instance DIR`.

Theory of operation. One process per running instance, detached from whoever started it (double
fork, new session), its pid in mgr/iris.pid and IRIS's marker mgr/iris.ids while it runs.
Start-up reads iris.cpf like IRIS: validation problems are written in IRIS's words and the
process exits 1; otherwise it sizes shared memory against the emulated host, writes the start-up
sequence, binds the superserver, the web port and its control socket, writes `Enabling logons`,
and reports "running" on the ready pipe. Then it ticks the armed scenario every `interval /
speed` real seconds until asked to stop (SIGTERM or the control socket), and writes the shutdown
sequence. The running configuration (`active`) is the CPF as read at start plus the dynamic
changes merged since; restart-only changes wait in iris.cpf for the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from irisd.core import cpf
from irisd.emulator import files, scenarios, sequences
from irisd.emulator.layout import InstancePaths, cpf_template
from irisd.emulator.logfmt import Line
from irisd.emulator.logwriter import LogWriter
from irisd.emulator.mergefile import MergeRefused, database_limits, plan_merge
from irisd.emulator.model import Allocation, allocate, memory_plan, settings_from
from irisd.emulator.params import known_parameters, validate
from irisd.emulator.servers import Superserver, control_app, monitor_app, start_site
from irisd.emulator.world import Tick, World

U = "Utility.Event"


def local_now() -> datetime:
    return datetime.now()


class Instance:
    def __init__(self, paths: InstancePaths, speed: float, user: str) -> None:
        self.paths = paths
        self.speed = max(speed, 0.001)
        self.user = user
        self.state = files.load_state(paths)
        self.known = known_parameters(cpf.parse(cpf_template()))
        self.active = cpf.parse(paths.cpf.read_text(encoding="utf-8"))
        self.settings = settings_from(self.active)
        self.writer = LogWriter(paths.messages, paths.alerts,
                                max_mb=max(self.settings.max_console_log_mb, 1), clock=local_now)  # fmt: skip
        self.pids = sequences.Pids(os.getpid())
        self.superserver = Superserver()
        self.stop_event = asyncio.Event()
        self.run_number = int(self.state.get("starts", 0)) + 1
        self.allocation: Allocation | None = None
        self.tick = Tick()
        self.ticks = 0
        self.ecp: dict[str, bool] = {}
        self.since = local_now()

    # -- start-up ---------------------------------------------------------------------------

    async def start(self) -> str | None:
        """Run start-up; None when logons are enabled, else the reason it failed."""
        previous_clean = bool(self.state.get("clean", True))
        first = int(self.state.get("starts", 0)) == 0
        self._mark_running()
        if not first:
            self.writer.write(sequences.recovery_block(self.paths.install,
                                                       f"{local_now():%a %b %d %H:%M:%S %Y}"))  # fmt: skip
        ctx = self._context(previous_clean, first)
        problems = validate(self.active, known=self.known)
        host = files.read_host(self.paths)
        plan = memory_plan(self.settings, host)
        self.allocation = allocate(plan, host, self.settings.memlock)
        if self.allocation.plan is not None:
            p = self.allocation.plan
            self.state["allocation"] = (f"Allocated {p.total_mb}MB shared memory: {p.globals_mb}MB "
                                        f"global buffers, {p.routines_mb}MB routine buffers")  # fmt: skip
        await self.play(sequences.startup_head(ctx, self.allocation, plan.auto_globals))
        if self.allocation.plan is None:
            await self.play(sequences.allocation_failed_lines(ctx))
            return "shared memory allocation failed"
        if problems:
            await self.play(sequences.startup_config(ctx)[:4])
            await self.play(sequences.cpf_failure_lines(problems, ctx))
            return f"Error: Parsing CPF file {self.paths.cpf} - Shutting down the system"
        await self.play(sequences.startup_config(ctx))
        reason = await self._listen()
        if reason:
            await self.play([Line(0.0, self.pids.superserver, 3, U, reason)])
            return reason
        await self.play(sequences.startup_tail(ctx))
        self.state.update(status="running", since=self.since.isoformat(), clean=False)
        files.save_state(self.paths, self.state)
        return None

    def _mark_running(self) -> None:
        self.paths.pid.write_text(f"{os.getpid()}\n")
        self.paths.ids.write_text(files.read_host(self.paths).nodename + "\n")
        self.state.update(status="starting", pid=os.getpid(), starts=self.run_number)
        files.save_state(self.paths, self.state)

    def _context(self, previous_clean: bool, first: bool) -> sequences.StartContext:
        cpf_text = self.paths.cpf.read_text(encoding="utf-8")
        digest = hashlib.sha256(cpf_text.encode()).hexdigest()
        changed = not first and self.state.get("cpf_sha256") not in (None, digest)
        now = datetime.now(UTC)
        jdir = self.settings.journal_dir or self.paths.install + "mgr/journal/"
        return sequences.StartContext(
            name=str(self.state.get("name", "IRIS")), install=self.paths.install,
            cpf_path=str(self.paths.cpf.resolve()), nodename=files.read_host(self.paths).nodename,
            user=self.user, utc_text=now.strftime("%m/%d/%Y %H:%M:%S.") + f"{now.microsecond // 1000:03d}",
            journal_file=f"{jdir}{local_now():%Y%m%d}.{self.run_number:03d}",
            superserver_port=self.settings.superserver_port, pids=self.pids,
            previous_clean=previous_clean, first_start=first, cpf_changed=changed,
            alternate_same=self.settings.journal_dir == self.settings.alternate_journal_dir,
        )  # fmt: skip

    async def _listen(self) -> str | None:
        s = self.settings
        try:
            await self.superserver.start(s.bind_address, s.superserver_port)
            self._web = web.AppRunner(monitor_app(self))
            await start_site(self._web, host=s.bind_address, port=s.web_port)
            self._ctl = web.AppRunner(control_app(self))
            self.paths.control_socket.unlink(missing_ok=True)
            await start_site(self._ctl, path=self.paths.control_socket)
        except OSError as exc:
            # Wording ours: IRIS's text for a port it cannot bind is not in ../shared/iris.
            return f"Error: cannot listen on port {exc.filename or ''}: {exc.strerror} - Shutting down the system"
        return None

    # -- running ----------------------------------------------------------------------------

    async def play(self, lines: list[Line] | tuple[Line, ...]) -> None:
        for line in lines:
            if line.delay:
                await asyncio.sleep(line.delay / self.speed)
            self.writer.write(line)

    async def run_scenario(self) -> None:
        while not self.stop_event.is_set():
            scenario = self.scenario()
            await self._probe_ecp()
            world = self.world()
            self.tick = scenario.tick(
                world,
                random.Random(f"{self.state.get('seed', 0)}:{self.ticks}"),  # noqa: S311 - seeded simulation, not security
            )
            await self.play(self.tick.lines)
            self._advance(scenario)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), scenario.interval / self.speed)

    def scenario(self) -> scenarios.Scenario:
        return (
            scenarios.get(str(self.state.get("scenario") or "normal_load"))
            or scenarios.SCENARIOS["normal_load"]
        )

    def world(self) -> World:
        return World(
            settings=self.settings, host=files.read_host(self.paths), pids=self.pids,
            install=self.paths.install, tick=self.ticks,
            elapsed=float(self.state.get("scenario_elapsed", 0.0)), run=self.run_number,
            armed_run=int(self.state.get("armed_run", 0)), sessions=self.superserver.sessions,
            license_units=self._license_units, allocation=self.allocation, ecp_reachable=dict(self.ecp),
            db_max_mb=dict(self.state.get("databases", {})), failing_before=self.tick.failing,
        )  # fmt: skip

    def _advance(self, scenario: scenarios.Scenario) -> None:
        self.ticks += 1
        elapsed = float(self.state.get("scenario_elapsed", 0.0)) + scenario.interval
        done = elapsed >= scenario.onset
        self.state.update(scenario_elapsed=elapsed, scenario_done=done, health=self.tick.health,
                          failing=self.tick.failing, sessions=self.superserver.sessions)  # fmt: skip
        files.save_state(self.paths, self.state)

    async def _probe_ecp(self) -> None:
        for server in self.settings.ecp_servers:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(server.host, server.port), 0.5
                )
            except (OSError, TimeoutError):
                self.ecp[server.name] = False
                continue
            writer.close()
            self.ecp[server.name] = True

    # -- control ----------------------------------------------------------------------------

    def request_stop(self, user: str) -> None:
        self.user = user
        self.stop_event.set()

    def status(self) -> dict[str, Any]:
        return {**self.state, "sessions": self.superserver.sessions, "pid": os.getpid(),
                "failing": self.tick.failing, "health": self.tick.health,
                "active": {"locksiz": self.settings.locksiz, "gmheap": self.settings.gmheap_kb,
                           "bbsiz": self.settings.bbsiz_kb,
                           "DaysBeforePurge": self.settings.days_before_purge}}  # fmt: skip

    def inject(self, name: str) -> dict[str, Any]:
        """Play `name` from now on. Its CPF and host set-up were applied by the caller
        (`control.inject` merges it first); the database limits it assumes are set here."""
        scenario = scenarios.get(name)
        if scenario is None:
            return {"ok": False, "error": f"unknown scenario {name!r}"}
        databases = {**self.state.get("databases", {}), **dict(scenario.databases)}
        self.state.update(scenario=name, scenario_elapsed=0.0, scenario_done=False,
                          armed_run=self.run_number, databases=databases)  # fmt: skip
        files.save_state(self.paths, self.state)
        return {"ok": True, "scenario": name}

    async def merge(self, path: str) -> dict[str, Any]:
        try:
            # A merge file is small; reading it inline keeps the merge atomic for the loop.
            patch = cpf.parse(Path(path).read_text(encoding="utf-8"))  # noqa: ASYNC240
        except OSError as exc:
            return {"ok": False, "error": f"{path}: {exc.strerror}"}
        on_disk = cpf.parse(self.paths.cpf.read_text(encoding="utf-8"))
        plan = plan_merge(on_disk, self.active, patch, known=self.known)
        if isinstance(plan, MergeRefused):
            for problem in plan.problems:  # Wording ours, after IRIS's CPF messages.
                self.writer.write(Line(0.0, self.pids.of(500), 2, U, f"Configuration merge of "
                                       f"{path} failed: {problem.message}", "config.merge_failed"))  # fmt: skip
            return {"ok": False, "problems": [p.message for p in plan.problems]}
        files.atomic_write(
            self.paths.cpf, cpf.render(plan.document)
        )  # small file, in the loop on purpose
        self.active = plan.active
        self.settings = settings_from(self.active)
        self.writer.set_max_mb(max(self.settings.max_console_log_mb, 1))
        self.state["databases"] = database_limits(plan.actions, self.state.get("databases", {}))
        self._log_merge(path, plan.applied, plan.pending)
        pending = list(self.state.get("pending", [])) + [
            f"[{c.section}] {c.name}={c.new}" for c in plan.pending
        ]
        self.state["pending"] = pending
        files.save_state(self.paths, self.state)
        return {"ok": True, "applied": [f"[{c.section}] {c.name}={c.new}" for c in plan.applied],
                "pending": pending, "actions": [a.operation for a in plan.actions]}  # fmt: skip

    def _log_merge(
        self, path: str, applied: tuple[cpf.Change, ...], pending: tuple[cpf.Change, ...]
    ) -> None:
        p = self.pids.of(500)
        self.writer.write(
            Line(0.0, p, 0, U, f"Updating configuration information from {path}", "config.changed")
        )
        for c in applied:  # Wording ours: no real text for a merged parameter is known.
            self.writer.write(Line(0.0, p, 0, U, f"Configuration merge: [{c.section}] {c.name} "
                                   f"{_changed(c)}, active now", "config.changed"))  # fmt: skip
        for c in pending:
            text = f"Configuration merge: [{c.section}] {c.name} {_changed(c)}, restart required"
            self.writer.write(Line(0.0, p, 1, U, text, "config.changed"))

    @property
    def _license_units(self) -> int:
        return int(self.state.get("license_units_active") or files.license_units(self.paths))

    def metrics_text(self) -> str:
        from irisd.emulator.metrics import render_metrics

        return render_metrics(self)

    # -- shutdown ---------------------------------------------------------------------------

    async def shutdown(self) -> None:
        forced = self.tick.failing and self.scenario().name == "write_daemon_stalled"
        if forced:
            killed = await self.superserver.close_sessions()
            wait = min(self.settings.shutdown_timeout, 60) / self.speed
            await self.play(
                sequences.forced_lines(self.pids, self.user, killed + 30, wait * self.speed)
            )
        else:
            await self._wait_sessions(self.settings.shutdown_timeout / self.speed)
            await self.superserver.close_sessions()
            await self.play(sequences.shutdown_lines(self.pids, self.user))
        await self._close_listeners()
        digest = hashlib.sha256(self.paths.cpf.read_bytes()).hexdigest()
        self.state.update(status="down", last_used=local_now().isoformat(), clean=not forced,
                          cpf_sha256=digest, pending=[], pid=None, sessions=0)  # fmt: skip
        self.state.pop("license_units_active", None)
        self.finish()

    async def _wait_sessions(self, timeout: float) -> None:  # noqa: ASYNC109 - ShutdownTimeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.superserver.sessions and loop.time() < deadline:
            self.superserver.changed.clear()
            try:
                await asyncio.wait_for(self.superserver.changed.wait(), deadline - loop.time())
            except TimeoutError:
                break

    async def _close_listeners(self) -> None:
        await self.superserver.close()
        for runner in (getattr(self, "_web", None), getattr(self, "_ctl", None)):
            if runner is not None:
                await runner.cleanup()
        self.paths.control_socket.unlink(missing_ok=True)

    def finish(self) -> None:
        files.save_state(self.paths, self.state)
        self.paths.pid.unlink(missing_ok=True)
        self.paths.ids.unlink(missing_ok=True)
        self.writer.close()


def _changed(change: cpf.Change) -> str:
    if change.old is None:
        return f"added as '{change.new}'"
    return f"changed from '{change.old}' to '{change.new}'"


async def run(paths: InstancePaths, speed: float, user: str, ready: int | None) -> int:
    instance = Instance(paths, speed, user)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, instance.request_stop, user)
    instance.state["license_units_active"] = files.license_units(paths)
    failure = await instance.start()
    if failure:
        await instance._close_listeners()
        instance.state.update(status="down", last_used=local_now().isoformat(), pid=None)
        instance.finish()
        _signal_ready(ready, f"failed {failure}")
        return 1
    _signal_ready(ready, f"running {os.getpid()}")
    await instance.run_scenario()
    await instance.shutdown()
    return 0


def _signal_ready(fd: int | None, message: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (message + "\n").encode())
        os.close(fd)
    except OSError:
        pass  # the starter went away; the instance runs on regardless


def _detach() -> None:
    """Double fork: the instance is re-parented to init, so no starter ever holds a zombie."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="irisd-emulated-iris")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--user", default="irisowner")
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("--detach", action="store_true")
    args = parser.parse_args(argv)
    paths = InstancePaths(args.directory)
    if args.detach:
        _detach()
    with open(paths.stderr, "a", encoding="utf-8") as err:
        os.dup2(err.fileno(), 2)
    return asyncio.run(run(paths, args.speed, args.user, args.ready_fd))


if __name__ == "__main__":
    sys.exit(main())
