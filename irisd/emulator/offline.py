"""Plays a scenario without a process: a simulated clock, the same start-up sequence and scenario
ticks the live instance uses, and optionally a remediation applied at a chosen tick, following
the same rules (dynamic parameters at once, the rest after a restart, which the play performs by
writing a shutdown and a start-up). Pure apart from reading the packaged CPF template.

Used by `irisd bundle`, by the generator, and by the tests that prove each scenario's fix
resolves it and its wrong fix does not.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from irisd.core import cpf
from irisd.emulator import scenarios, sequences
from irisd.emulator.layout import render_cpf
from irisd.emulator.logfmt import Line
from irisd.emulator.mergefile import database_limits, parse_action
from irisd.emulator.model import HostFacts, allocate, memory_plan, settings_from
from irisd.emulator.params import is_dynamic
from irisd.emulator.world import Remedy, Tick, World

INSTALL = "/usr/irissys/"
BASE_PID = 4120


@dataclass(frozen=True, slots=True)
class Stamped:
    at: datetime
    line: Line


@dataclass(slots=True)
class Play:
    """The mutable state of one offline run; `entries` and `ticks` are the results."""

    scenario: scenarios.Scenario
    seed: int
    clock: datetime
    doc: cpf.CpfDocument
    active: cpf.CpfDocument
    host: HostFacts
    license_units: int
    db_max: dict[str, int]
    ecp_up: bool = False
    run: int = 1
    elapsed: float = 0.0
    entries: list[Stamped] = field(default_factory=list)
    ticks: list[tuple[datetime, Tick]] = field(default_factory=list)
    pids: sequences.Pids = field(default_factory=lambda: sequences.Pids(BASE_PID))
    allocation: object = None

    def emit(self, lines: list[Line] | tuple[Line, ...]) -> None:
        for line in lines:
            self.clock += timedelta(seconds=line.delay)
            self.entries.append(Stamped(self.clock, line))


def new_play(name: str, *, seed: int, anchor: datetime, hugepages: int = 0) -> Play:
    scenario = scenarios.get(name)
    if scenario is None:
        raise KeyError(name)
    doc = cpf.parse(render_cpf(INSTALL, 1972, 52773))
    for section, param, value in scenario.setup:
        doc = cpf.set_value(doc, section, param, value.replace(scenarios.FREE_PORT, "41773"))
    pages = dict(scenario.host_setup).get("vm.nr_hugepages", str(hugepages))
    host = HostFacts(16384, int(pages), 2048, 8, "iris-host-01")
    return Play(scenario, seed, anchor, doc, doc, host, scenario.license_units or 25,
                dict(scenario.databases))  # fmt: skip


def start(play: Play, *, previous_clean: bool = True) -> None:
    settings = settings_from(play.active)
    plan = memory_plan(settings, play.host)
    alloc = allocate(plan, play.host, settings.memlock)
    play.allocation = alloc
    first = play.run == 1
    ctx = sequences.StartContext(
        name="IRIS", install=INSTALL, cpf_path=INSTALL + "iris.cpf", nodename=play.host.nodename,
        user="irisowner", utc_text=f"{play.clock:%m/%d/%Y %H:%M:%S}.000",
        journal_file=f"{settings.journal_dir}{play.clock:%Y%m%d}.{play.run:03d}",
        superserver_port=settings.superserver_port, pids=play.pids, previous_clean=previous_clean,
        first_start=first, cpf_changed=False,
        alternate_same=settings.journal_dir == settings.alternate_journal_dir,
    )  # fmt: skip
    if not first:
        play.emit([replace(sequences.recovery_block(INSTALL, f"{play.clock:%a %b %d %H:%M:%S %Y}"),
                           delay=2.0)])  # fmt: skip
    play.emit(sequences.startup_head(ctx, alloc, plan.auto_globals))
    play.emit(sequences.startup_config(ctx))
    play.emit(sequences.startup_tail(ctx))


def world(play: Play, tick: int) -> World:
    settings = settings_from(play.active)
    ecp = {s.name: play.ecp_up for s in settings.ecp_servers}
    failing = bool(play.ticks) and play.ticks[-1][1].failing
    return World(settings, play.host, play.pids, INSTALL, tick, play.elapsed, play.run, 1,
                 license_units=play.license_units, allocation=play.allocation,  # type: ignore[arg-type]
                 ecp_reachable=ecp, db_max_mb=dict(play.db_max), failing_before=failing)  # fmt: skip


def run_ticks(play: Play, count: int, *, first: int = 0) -> Iterator[Tick]:
    """Play `count` ticks numbered from `first` (ticks since logons were enabled in this run)."""
    for n in range(first, first + count):
        tick = play.scenario.tick(world(play, n), random.Random(f"{play.seed}:{play.run}:{n}"))  # noqa: S311 - seeded simulation, not security
        play.emit(tick.lines)
        play.ticks.append((play.clock, tick))
        play.clock += timedelta(seconds=play.scenario.interval)
        play.elapsed += play.scenario.interval
        yield tick


def apply(play: Play, remedy: Remedy) -> None:
    """Carry out a remediation the way the instance would: merge, host, key, restart."""
    for section, name, value in remedy.cpf:
        play.doc = cpf.set_value(play.doc, section, name, value)
        if is_dynamic(section, name):
            play.active = cpf.set_value(play.active, section, name, value)
    play.db_max = database_limits(map(parse_action, remedy.actions), play.db_max)
    for key, value in remedy.host:
        if key == "vm.nr_hugepages":
            play.host = replace(play.host, hugepages_total=int(value))
    if remedy.external:
        play.ecp_up = True
    if remedy.restart or remedy.force:
        restart(play, forced=remedy.force, units=remedy.license_units)


def restart(play: Play, *, forced: bool = False, units: int | None = None) -> None:
    if forced:
        play.emit([sequences.irisforce_line(play.pids.of(401), 30)])
    else:
        play.emit(sequences.shutdown_lines(play.pids, "irisowner"))
    play.clock += timedelta(seconds=20)
    play.run += 1
    play.pids = sequences.Pids(BASE_PID + 1000 * play.run)
    play.active = play.doc
    if units is not None:
        play.license_units = units
    start(play, previous_clean=not forced)


def render_text(entries: list[Stamped]) -> str:
    from irisd.emulator.logfmt import render

    return "".join(render(e.line, e.at) for e in entries)
