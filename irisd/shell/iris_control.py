"""Runs IRIS's `iris` control program: an argument list, never a shell, always with a timeout.

Output is parsed by `irisd.core.control`. Following isclib's practice, commands that change the
instance (start, stop, force) are confirmed by re-reading `iris qlist` instead of trusting the
exit code alone. Failures (a missing program, a timeout, a non-zero exit, unparsable output)
raise `ControlError` carrying the argument list and what the program said.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from irisd.core.control import InstanceStatus, ListedInstance, Malformed, parse_list, parse_qlist
from irisd.errors import ControlError


@dataclass(frozen=True, slots=True)
class Completed:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str


class IrisControl:
    """One `iris` program (`/usr/bin/iris`, or an emulated instance's `bin/iris`)."""

    def __init__(self, program: Path | str = "/usr/bin/iris", *, timeout: float = 30.0) -> None:
        self.program = str(program)
        self.timeout = timeout

    # The timeout is a parameter on purpose: a caller budgets each command (ShutdownTimeout).
    async def run(
        self,
        *args: str,
        timeout: float | None = None,  # noqa: ASYNC109
        check: bool = True,
    ) -> Completed:
        argv = (self.program, *args)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise ControlError(f"{self.program}: cannot run: {exc.strerror}") from exc
        limit = self.timeout if timeout is None else timeout
        try:
            out, err = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise ControlError(f"{' '.join(argv)}: no answer within {limit:g} s") from None
        done = Completed(argv, proc.returncode or 0, out.decode(errors="replace"),
                         err.decode(errors="replace"))  # fmt: skip
        if check and done.exit_code != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise ControlError(
                f"{' '.join(argv)}: exit {done.exit_code}: {said[-1] if said else ''}"
            )
        return done

    async def qlist(self, instance: str | None = None) -> tuple[InstanceStatus, ...]:
        done = await self.run("qlist", *([instance] if instance else []))
        parsed = parse_qlist(done.stdout)
        bad = [p for p in parsed if isinstance(p, Malformed)]
        if bad:
            raise ControlError(
                f"{self.program} qlist: unreadable line {bad[0].line!r}: {bad[0].reason}"
            )
        return tuple(p for p in parsed if isinstance(p, InstanceStatus))

    async def status(self, instance: str) -> InstanceStatus:
        found = [s for s in await self.qlist(instance) if s.name.upper() == instance.upper()]
        if not found:
            raise ControlError(f"{self.program} qlist {instance}: no such instance")
        return found[0]

    async def list(self, instance: str | None = None) -> tuple[ListedInstance, ...]:
        done = await self.run("list", *([instance] if instance else []))
        return parse_list(done.stdout)

    async def start(self, instance: str, *, timeout: float | None = None) -> InstanceStatus:  # noqa: ASYNC109
        await self.run("start", instance, "quietly", timeout=timeout)
        return await self._expect(instance, "running")

    async def stop(
        self,
        instance: str,
        *,
        restart: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> InstanceStatus:
        args = ["stop", instance, "quietly", *(["restart"] if restart else [])]
        await self.run(*args, timeout=timeout)
        return await self._expect(instance, "running" if restart else "down")

    async def force(self, instance: str, *, timeout: float | None = None) -> InstanceStatus:  # noqa: ASYNC109
        await self.run("force", instance, "quietly", timeout=timeout)
        return await self._expect(instance, "down")

    async def merge(self, instance: str, merge_file: Path) -> Completed:
        return await self.run("merge", instance, str(merge_file))

    async def _expect(self, instance: str, status: str) -> InstanceStatus:
        now = await self.status(instance)
        if now.status != status:
            raise ControlError(f"{instance}: expected {status!r} after the command, qlist says "
                               f"{now.status!r}")  # fmt: skip
        return now
