"""The registry of failure scenarios the emulated instance plays. Pure.

Each scenario states its root cause, symptoms, the CPF/host set-up that makes it happen (applied
when it is armed), the remediation that really resolves it in the emulator and a plausible wrong
one that does not, and a `tick(world, rng)` giving the entries, metrics and health of one moment.

Wording: IRIS's exact text is used where ../shared/iris has it (huge-page fallback, write-daemon
pause and System Monitor alert, `Process … generated 3 alerts`, `Process terminated abnormally`,
`License limit exceeded N times since instance start.`, expansion lines). Where no real text is
known (lock table full, heap exhausted, journal disk full, database at maximum size, ECP loss,
`<STORE>` errors) the wording is ours; those lines are marked `# ours` below.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from irisd.emulator import noise
from irisd.emulator.logfmt import Line
from irisd.emulator.model import heap_mb
from irisd.emulator.world import Remedy, Tick, World

G, U = "Generic.Event", "Utility.Event"
TickFn = Callable[[World, random.Random], Tick]
FREE_PORT = "@FREE_PORT@"  # replaced by a free loopback port when the scenario is armed


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    code: str  # the root-cause taxonomy code
    summary: str
    root_cause: str
    symptoms: tuple[str, ...]  # taxonomy codes that follow from it
    setup: tuple[tuple[str, str, str], ...]  # CPF (section, name, value) applied when armed
    fix: Remedy
    wrong_fix: Remedy
    tick: TickFn
    host_setup: tuple[tuple[str, str], ...] = ()
    license_units: int | None = None
    databases: tuple[tuple[str, int], ...] = ()  # database maximum sizes (MB) set when armed
    interval: float = 5.0  # simulated seconds between ticks
    onset: float = 120.0  # simulated seconds after which the scenario counts as played


def _with_noise(world: World, rng: random.Random, tick: Tick) -> Tick:
    quiet = noise.background(world, rng)
    metrics = {**noise.metrics(world, rng), **tick.metrics}
    return Tick(quiet + tick.lines, metrics, tick.failing, tick.health, noise=len(quiet))


# -- normal_load -------------------------------------------------------------------------------


def _normal(world: World, rng: random.Random) -> Tick:
    return _with_noise(world, rng, Tick())


# -- lock table full ---------------------------------------------------------------------------

LOCK_DEMAND = 24 * 1024 * 1024  # bytes the application's locks need at peak


def lock_capacity(world: World) -> int:
    heap_bytes = heap_mb(world.settings, 1024) * 1024 * 1024
    cap = heap_bytes // 2  # the lock table may take about half of the heap
    return min(world.settings.locksiz, cap) if world.settings.locksiz else cap


def _lock_table(world: World, rng: random.Random) -> Tick:
    cap = lock_capacity(world)
    ramp = min(1.0, 0.6 + world.elapsed / 200)
    used = min(int(LOCK_DEMAND * ramp), cap)
    pct = round(100 * used / cap, 1)
    metrics = {"iris_lock_table_percent_full": pct}
    if LOCK_DEMAND * ramp <= cap * 0.85:
        return _with_noise(world, rng, Tick(metrics=metrics))
    pid = world.pids.of(900 + rng.randrange(60))
    lines = [
        Line(
            0.2,
            world.pids.monitor,
            1 if pct < 95 else 2,
            U,
            f"[SYSTEM MONITOR] LockTable {'Warning' if pct < 95 else 'Alert'}: Lock table "
            f"is {pct}% full ( {'Warnvalue is 85' if pct < 95 else 'Alertvalue is 95'}).",
            "lock.table_full",
        )
    ]  # ours, in the shape of System Monitor's sensor lines
    if LOCK_DEMAND * ramp > cap:
        lines.append(
            Line(
                0.4,
                pid,
                2,
                G,
                f"Lock table full: LOCK request by process {pid} failed"
                f" (lock table {cap} bytes, all in use)",
                "lock.table_full",
            )
        )  # ours
    return _with_noise(world, rng, Tick(tuple(lines), metrics, True, "alert"))


# -- shared memory heap exhausted --------------------------------------------------------------

HEAP_DEMAND_MB = 600  # parallel dejournaling with two updaters on top of the base load


def _gmheap(world: World, rng: random.Random) -> Tick:
    configured = heap_mb(world.settings, world.allocation.plan.globals_mb if world.allocation
                         and world.allocation.plan else 1024)  # fmt: skip
    pct = min(100.0, round(100 * HEAP_DEMAND_MB / max(configured, 1), 1))
    metrics = {"iris_smh_percent_full": pct, "iris_smh_total": configured * 1048576.0}
    if configured >= HEAP_DEMAND_MB * 1.2:
        return _with_noise(world, rng, Tick(metrics=metrics))
    lines = (
        Line(0.3, world.pids.monitor, 2, U, f"[SYSTEM MONITOR] SMHeap Alert: Shared memory heap "
             f"is {pct}% used ( Alertvalue is 95). SMH status 2.", "memory.gmheap"),  # ours
        Line(0.5, world.pids.of(60), 2, G, f"Unable to allocate {HEAP_DEMAND_MB - configured // 2}"
             f"MB from the shared memory heap (gmheap {configured}MB): parallel dejournaling "
             "reduced to 1 updater", "memory.gmheap"),  # ours
    )  # fmt: skip
    return _with_noise(world, rng, Tick(lines, {**metrics, "iris_smh_percent_full": 100.0},
                                        True, "alert"))  # fmt: skip


# -- license limit exceeded --------------------------------------------------------------------

LICENSE_DEMAND = 32  # users the application tries to keep logged in


def _license(world: World, rng: random.Random) -> Tick:
    demand = LICENSE_DEMAND + world.sessions
    used = min(demand, world.license_units)
    metrics = {
        "iris_license_consumed": float(used),
        "iris_license_available": float(world.license_units - used),
        "iris_license_percent_used": round(100 * used / world.license_units, 1),
    }
    if demand <= world.license_units:
        return _with_noise(world, rng, Tick(metrics=metrics))
    times = (world.tick + 1) * (demand - world.license_units)
    line = Line(0.7, world.pids.of(13), 2, G,
                f"License limit exceeded {times} times since instance start.",
                "license.limit_exceeded")  # fmt: skip
    return _with_noise(world, rng, Tick((line,), metrics, True, "warn"))


# -- journal directory full --------------------------------------------------------------------

JOURNAL_VOLUME_MB = 1500  # the volume under mgr/journal/ on the emulated host
JOURNAL_DAILY_MB = 600


def journal_free_mb(world: World) -> float:
    s = world.settings
    if s.journal_dir.rstrip("/") != (world.mgr + "journal").rstrip("/"):
        return 40_000.0  # another volume: the remedy of switching directories
    days = s.days_before_purge or 30
    return JOURNAL_VOLUME_MB - min(days, 30) * JOURNAL_DAILY_MB * 0.42 - world.elapsed * 0.05


def _journal(world: World, rng: random.Random) -> Tick:
    free = round(journal_free_mb(world), 1)
    metrics = {"iris_jrn_free_space": max(free, 0.0)}
    if free >= 250:
        return _with_noise(world, rng, Tick(metrics=metrics))
    jdir = world.settings.journal_dir
    level, limit = ("Alert", "Alertvalue is 50") if free < 50 else ("Warning", "Warnvalue is 250")
    lines = [
        Line(
            0.2,
            world.pids.monitor,
            2 if free < 50 else 1,
            U,
            f"[SYSTEM MONITOR] Journal space {level}: {max(free, 0)} MB free in {jdir} ( {limit}).",
            "journal.disk_full",
        )
    ]  # ours, System Monitor's shape
    if free < 50:
        lines.append(
            Line(
                0.5,
                world.pids.of(34),
                2,
                G,
                "INTERSYSTEMS IRIS JOURNALING SYSTEM "
                f"MESSAGE\nJournal write to {jdir} failed: no space left on device; "
                "retrying",
                "journal.disk_full",
            )
        )  # ours, in the real two-line form
    return _with_noise(
        world, rng, Tick(tuple(lines), metrics, True, "alert" if free < 50 else "warn")
    )


# -- database at its maximum size --------------------------------------------------------------

DB_START_MB = 960


def _database(world: World, rng: random.Random) -> Tick:
    limit = world.db_max_mb.get("USER", 0)
    size = DB_START_MB + int(world.elapsed * 0.5)
    if limit:
        size = min(size, limit)
    directory = world.mgr + "user/"
    metrics = {"iris_db_size_mb": float(size), "iris_db_max_size_mb": float(limit)}
    if not limit or size + 10 <= limit:
        return _with_noise(world, rng, Tick(metrics=metrics))
    pid = world.pids.of(700 + rng.randrange(40))
    lines = (
        Line(0.3, world.pids.of(32), 0, "Database.StartExpansion", f"Starting Expansion for "
             f"database {directory}. 10 MB requested.", "database.expansion"),
        Line(0.02, world.pids.of(32), 2, G, f"Expansion failed for database {directory}: it has "
             f"reached its maximum size of {limit} MB", "database.full"),  # ours
        Line(0.3, pid, 2, U, f"<FILEFULL> error in process {pid}: database {directory} is at its "
             f"maximum size ({limit} MB)", "database.full"),  # ours
    )  # fmt: skip
    return _with_noise(world, rng, Tick(lines, metrics, True, "alert"))


# -- write daemon stalled ----------------------------------------------------------------------


def _write_daemon(world: World, rng: random.Random) -> Tick:
    if world.run != world.armed_run:  # the freeze lives in memory: a restart clears it
        return _with_noise(world, rng, Tick(metrics={"iris_wd_cycle_time": 0.4}))
    stalled = 80 + world.tick * 5.2
    wdpass = 1049
    lines: list[Line] = []
    if world.tick % 3 == 0:
        lines.append(Line(0.1, world.pids.monitor, 2, U, "[SYSTEM MONITOR] WriteDaemon Alert: "
                          f"Write Daemon still on pass {wdpass} after {stalled:.1f} seconds.",
                          "writedaemon.paused"))  # fmt: skip
    if world.tick % 6 == 0:
        lines.append(Line(0.2, world.pids.control, 2, "WriteDaemon.Pausing", "CP: Pausing users "
                          "because the Write Daemon has not shown\n    signs of activity for "
                          f"{int(stalled)} seconds. Users will resume if Write Daemon completes a"
                          "\n    pass or writes to disk (wdpass=3).", "writedaemon.paused"))  # fmt: skip
        lines.append(Line(0.1, world.pids.superserver, 1, U, "Superserver detected that updates "
                          "are suspended", "writedaemon.paused"))  # fmt: skip
    metrics = {"iris_wd_cycle_time": stalled, "iris_wd_suspended": 1.0}
    return _with_noise(world, rng, Tick(tuple(lines), metrics, True, "hung"))


# -- huge pages at start-up --------------------------------------------------------------------


def _hugepages(world: World, rng: random.Random) -> Tick:
    alloc = world.allocation
    failing = alloc is not None and not alloc.huge_pages
    metrics = {"iris_phys_mem_percent_used": 71.0 if failing else 58.0}
    return _with_noise(world, rng, Tick(metrics=metrics, failing=failing,
                                        health="warn" if failing else "ok"))  # fmt: skip


# -- ECP connection lost -----------------------------------------------------------------------


def _ecp(world: World, rng: random.Random) -> Tick:
    lost = [s for s in world.settings.ecp_servers if not world.ecp_reachable.get(s.name, True)]
    metrics = {"iris_ecp_conn": float(len(world.settings.ecp_servers) - len(lost))}
    if not lost:
        lines: tuple[Line, ...] = ()
        if world.failing_before:
            lines = tuple(Line(0.1, world.pids.of(20), 0, G, f"ECP connection to data server "
                               f"{s.name} ({s.host}:{s.port}) restored", "ecp.state")  # ours
                          for s in world.settings.ecp_servers)  # fmt: skip
        return _with_noise(world, rng, Tick(lines, metrics))
    interval = world.settings.ecp_reconnect_interval
    duration = world.settings.ecp_reconnect_duration
    lines = tuple(
        Line(0.3, world.pids.of(20), 2, U, f"[SYSTEM MONITOR] ECP connection to data server "
             f"{s.name} ({s.host}:{s.port}) lost: state Trouble; reconnecting every {interval} "
             f"seconds for up to {duration} seconds", "ecp.connection_lost")  # ours
        for s in lost
    )  # fmt: skip
    return _with_noise(world, rng, Tick(lines, metrics, True, "alert"))


# -- process error storm -----------------------------------------------------------------------

PROCESS_NEED_KB = 65536


def _process_errors(world: World, rng: random.Random) -> Tick:
    bbsiz = world.settings.bbsiz_kb
    if bbsiz == -1 or bbsiz >= PROCESS_NEED_KB:
        return _with_noise(world, rng, Tick())
    lines: list[Line] = []
    for _ in range(rng.randrange(2, 5)):
        pid = world.pids.of(2000 + rng.randrange(500))
        lines.append(
            Line(
                0.05,
                pid,
                2,
                G,
                f"<STORE> error in process {pid} (ProcessOrders+"
                f"{rng.randrange(3, 40)}^APP.Orders.1): process memory limit bbsiz="
                f"{bbsiz} KB exhausted",
                "process.error",
            )
        )  # ours
        if rng.random() < 0.3:
            lines.append(Line(0.01, world.pids.clean, 2, G, f"Process terminated abnormally (pid "
                              f"{pid}, jobid 0x{rng.randrange(1 << 32):08x})",
                              "process.abnormal_exit"))  # fmt: skip
    if world.tick % 2 == 0:
        pid = world.pids.of(2000 + rng.randrange(500))
        lines.append(Line(0.02, world.pids.monitor, 2, U, f"Process {pid} generated 3 alerts in 10"
                          " seconds. Suspending alert notifications for this process.",
                          "process.error"))  # fmt: skip
    return _with_noise(world, rng, Tick(tuple(lines), {"iris_process_errors": float(len(lines))},
                                        True, "alert"))  # fmt: skip


# -- the registry ------------------------------------------------------------------------------

_RESTART_ONLY = Remedy("restart the instance without changing anything", restart=True)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "normal_load", "lifecycle.startup", "a healthy instance under ordinary load",
            "none", (), (), Remedy("nothing to fix"), Remedy("nothing to fix"), _normal,
        ),
        Scenario(
            "lock_table_full", "lock.table_full",
            "the lock table fills up under the application's peak locking",
            "[config] locksiz caps the lock table at 16 MB, below the 24 MB the workload needs",
            ("lock.table_full", "monitor.alert"),
            (("config", "locksiz", "16777216"),),
            Remedy("raise locksiz (applies at once)", cpf=(("config", "locksiz", "67108864"),)),
            Remedy("raise gmheap and restart: the locksiz cap still holds",
                   cpf=(("config", "gmheap", "1048576"),), restart=True),
            _lock_table,
        ),
        Scenario(
            "gmheap_exhausted", "memory.gmheap",
            "the shared memory heap is too small for parallel dejournaling",
            "[config] gmheap is 300 MB; the workload needs about 600 MB of heap",
            ("memory.gmheap",),
            (("config", "gmheap", "307200"),),
            Remedy("raise gmheap and restart (gmheap needs a restart)",
                   cpf=(("config", "gmheap", "1048576"),), restart=True),
            Remedy("raise gmheap without a restart: recorded, not active",
                   cpf=(("config", "gmheap", "1048576"),)),
            _gmheap,
        ),
        Scenario(
            "license_limit", "license.limit_exceeded",
            "more users than the licence allows",
            "the key holds 25 units; the application keeps 32 users logged in",
            ("license.limit_exceeded",), (),
            Remedy("install a 64-unit key and restart", license_units=64, restart=True),
            _RESTART_ONLY, _license, license_units=25,
        ),
        Scenario(
            "journal_full", "journal.disk_full",
            "the journal volume runs out of space",
            "journal files are kept 7 days on a 1.5 GB volume that holds about 6",
            ("journal.disk_full", "monitor.alert"),
            (("Journal", "DaysBeforePurge", "7"),),
            Remedy("purge journals after 1 day (applies at once)",
                   cpf=(("Journal", "DaysBeforePurge", "1"),)),
            Remedy("raise jrnbufs and restart", cpf=(("config", "jrnbufs", "128"),), restart=True),
            _journal,
        ),
        Scenario(
            "database_full", "database.full",
            "the USER database reaches its maximum size",
            "the USER database has a 1 GB maximum size and keeps growing",
            ("database.full", "database.expansion"), (),
            Remedy("lift the database's maximum size (merge [Actions] ModifyDatabase)",
                   actions=("ModifyDatabase:Name=USER,MaxSize=0",)),
            Remedy("raise global buffers and restart",
                   cpf=(("config", "globals", "0,0,1024,0,0,0"),), restart=True),
            _database, databases=(("USER", 1024),),
        ),
        Scenario(
            "write_daemon_stalled", "writedaemon.paused",
            "the write daemon stops completing passes; users are paused",
            "an external backup froze the write daemon and never thawed it",
            ("writedaemon.paused",), (),
            Remedy("force the instance down and start it (WIJ and journal recovery follow)",
                   force=True),
            Remedy("raise global buffers through a merge, no restart",
                   cpf=(("config", "globals", "0,0,1024,0,0,0"),)),
            _write_daemon, interval=5.0,
        ),
        Scenario(
            "hugepages_fallback", "memory.hugepages_fallback",
            "shared memory does not fit in the huge page pool at start-up",
            "vm.nr_hugepages holds 1200 MB; the instance needs about 2800 MB of shared memory",
            ("memory.hugepages_fallback",),
            (("config", "globals", "0,0,2048,0,0,0"),),
            Remedy("raise vm.nr_hugepages above the shared memory size and restart",
                   host=(("vm.nr_hugepages", "1500"),), restart=True),
            _RESTART_ONLY, _hugepages, host_setup=(("vm.nr_hugepages", "600"),),
        ),
        Scenario(
            "ecp_connection_lost", "ecp.connection_lost",
            "the application server loses its ECP data server",
            "the data server DATA1 is down (nothing listens on its port)",
            ("ecp.connection_lost",),
            (("ECPServers", "DATA1", f"127.0.0.1,{FREE_PORT}"),),
            Remedy("bring the data server back (listen on its address)",
                   external="data server DATA1 accepting connections"),
            Remedy("raise ClientReconnectDuration", cpf=(("ECP", "ClientReconnectDuration",
                                                          "3600"),)),
            _ecp,
        ),
        Scenario(
            "process_error_storm", "process.error",
            "application processes fail with <STORE> errors in a storm",
            "[config] bbsiz limits each process to 16 MB; the order job needs 64 MB",
            ("process.error", "process.abnormal_exit"),
            (("config", "bbsiz", "16384"),),
            Remedy("raise bbsiz (applies to new processes at once)",
                   cpf=(("config", "bbsiz", "-1"),)),
            Remedy("raise gmheap and restart", cpf=(("config", "gmheap", "1048576"),),
                   restart=True),
            _process_errors,
        ),
    )
}  # fmt: skip


def get(name: str) -> Scenario | None:
    return SCENARIOS.get(name)


def names() -> tuple[str, ...]:
    return tuple(SCENARIOS)
