"""What a scenario sees at one tick, and what it answers. Pure values.

A scenario is a function of the `World` (the instance's *active* settings, the host, elapsed
simulated time, real sessions and reachability) and a seeded `random.Random`: the same inputs give
the same `Tick`. Recurrence is therefore automatic: a condition keeps producing its entries on
every tick until the world changes (a dynamic parameter merged, a restart with a new value, a
host fix), which is how a remediation is seen to resolve it, or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from irisd.emulator.logfmt import Line
from irisd.emulator.model import Allocation, HostFacts, Settings
from irisd.emulator.sequences import Pids


@dataclass(frozen=True, slots=True)
class World:
    settings: Settings
    host: HostFacts
    pids: Pids
    install: str  # with a trailing slash
    tick: int  # ticks since logons were enabled in this run
    elapsed: float  # simulated seconds since the scenario was armed (across restarts)
    run: int  # start count of the instance
    armed_run: int  # the run in which the scenario was armed
    sessions: int = 0  # real superserver connections
    license_units: int = 25
    allocation: Allocation | None = None
    ecp_reachable: Mapping[str, bool] = field(default_factory=dict)
    db_max_mb: Mapping[str, int] = field(default_factory=dict)  # 0 = unlimited
    failing_before: bool = False

    @property
    def mgr(self) -> str:
        return self.install + "mgr/"


@dataclass(frozen=True, slots=True)
class Tick:
    lines: tuple[Line, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    failing: bool = False
    health: str = "ok"  # qlist state: ok, warn, alert, hung
    noise: int = 0  # how many of `lines`, from the front, are background noise, not the scenario's


@dataclass(frozen=True, slots=True)
class Remedy:
    """A remediation as data: CPF values to merge, whether a restart must follow, host changes
    (sysctl-style keys under the instance's host/ root), a new licence size, or an external fix."""

    description: str
    cpf: tuple[tuple[str, str, str], ...] = ()
    actions: tuple[str, ...] = ()  # [Actions] lines of the merge file
    restart: bool = False
    force: bool = False  # the restart must be `iris force` + `iris start`
    host: tuple[tuple[str, str], ...] = ()
    license_units: int | None = None
    external: str = ""  # a fix outside IRIS (a data server brought back)

    def steps(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        out += [{"kind": "cpf", "section": s, "parameter": n, "value": v} for s, n, v in self.cpf]
        out += [{"kind": "merge_action", "action": a} for a in self.actions]
        out += [{"kind": "sysctl", "key": k, "value": v} for k, v in self.host]
        if self.license_units is not None:
            out.append({"kind": "license_key", "units": self.license_units})
        if self.external:
            out.append({"kind": "external", "what": self.external})
        if self.restart or self.force:
            out.append({"kind": "restart", "force": self.force})
        return out
