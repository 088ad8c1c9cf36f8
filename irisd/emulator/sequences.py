"""IRIS's start-up, shutdown, forced-shutdown and failed-start sequences as `Line` scripts. Pure.

The texts and their order follow the real log (FACTS §1.5, §1.10; samples/messages.log): memory
allocation, WIJ, the multi-line banner, database mounts, the instance line, journal recovery or
the graceful-shutdown note, journaling start, section processing, the superserver, System
Monitor, `Enabling logons`. Delays are plausible seconds between lines on a small instance.
"""

from __future__ import annotations

from dataclasses import dataclass

from irisd.emulator.logfmt import Line
from irisd.emulator.model import Allocation
from irisd.emulator.params import Problem

VERSION = "2025.1"
BUILD = "223U"
VERSION_ID = "2025.1.0.223.0"
PRODUCT_BANNER = (
    f"IRIS for UNIX (Ubuntu Server LTS for x86-64) {VERSION} (Build {BUILD}) "
    "Tue Mar 11 2025 12:02:13 EDT"
)
G, U = "Generic.Event", "Utility.Event"


@dataclass(frozen=True, slots=True)
class Pids:
    """Plausible pids of the instance's processes, all derived from the control process."""

    control: int

    def of(self, offset: int) -> int:
        return self.control + offset

    @property
    def wrtdmn(self) -> int:
        return self.control + 33

    @property
    def stu(self) -> int:
        return self.control + 51

    @property
    def superserver(self) -> int:
        return self.control + 72

    @property
    def monitor(self) -> int:
        return self.control + 108

    @property
    def clean(self) -> int:
        return self.control + 58

    @property
    def shutdown(self) -> int:
        return self.control + 400


@dataclass(frozen=True, slots=True)
class StartContext:
    name: str
    install: str  # with a trailing slash
    cpf_path: str
    nodename: str
    user: str
    utc_text: str  # "11/14/2025 07:46:09.118", the instance line's UTC stamp
    journal_file: str
    superserver_port: int
    pids: Pids
    previous_clean: bool
    first_start: bool
    cpf_changed: bool
    alternate_same: bool


def allocation_lines(alloc: Allocation, pid: int) -> list[Line]:
    out: list[Line] = []
    if alloc.failed_hugepages_mb is not None:
        out.append(Line(0.0, pid, 2, G, f"Failed to allocate {alloc.failed_hugepages_mb}MB shared "
                        "memory using Huge Pages.  Startup will retry with standard pages.  If huge "
                        "pages are needed for performance, check the OS settings and consider "
                        "marking them as required with the InterSystems IRIS 'memlock' "
                        "configuration parameter.", "memory.hugepages_fallback"))  # fmt: skip
    for failed in alloc.failed_standard:
        out.append(Line(0.05, pid, 2, G, f"Failed to allocate {failed.total_mb}MB shared memory: "
                        f"{failed.globals_mb}MB global buffers, {failed.routines_mb}MB routine "
                        "buffers.", "memory.shm_failed"))  # fmt: skip
    if alloc.plan is not None:
        suffix = " using Huge Pages" if alloc.huge_pages else ""
        sev = 1 if alloc.failed_standard else 0
        out.append(Line(0.05, pid, sev, G, f"Allocated {alloc.plan.total_mb}MB shared memory{suffix}",
                        "memory.shm_allocated"))  # fmt: skip
        out.append(Line(0.0, pid, 0, G, alloc.plan.breakdown(), "memory.shm_allocated"))
    return out


def recovery_block(install: str, when: str) -> Line:
    """The timestamp-less WIJ recovery block IRIS's recovery program writes before start-up."""
    mgr = f"{install}mgr"
    text = (
        f"\n\n\n*** Recovery started at {when}\n"
        f"     Current default directory: {mgr}\n"
        f"     Log file directory: {mgr}/\n"
        f"     WIJ file spec: {mgr}/IRIS.WIJ\n"
        f"Recovering local ({mgr}/IRIS.WIJ) image journal file...\n"
        f"Starting WIJ recovery for '{mgr}/IRIS.WIJ'.\n"
        "  0 blocks pending in this WIJ.\n"
        "Exiting with status 3 (Success)\n"
    )
    return Line(0.0, 0, 0, "", text, "wij.recovery", raw=True)


def startup_head(ctx: StartContext, alloc: Allocation, auto_globals: bool) -> list[Line]:
    """Up to and including the banner: what happens before the CPF is processed."""
    c = ctx.pids.control
    mgr = f"{ctx.install}mgr"
    out: list[Line] = []
    if auto_globals:
        out.append(Line(0.0, c, 0, G, "Global buffer setting requires attention.  Auto-selected "
                        "25% of total memory."))  # fmt: skip
    out.append(Line(0.0, c, 0, G, "InterSystems IRIS license file (iris.key) must be validated "
                    "with License Server.", "license.info"))  # fmt: skip
    out += allocation_lines(alloc, c)
    out += [
        Line(0.002, c, 0, "Crypto.IntelSandyBridgeAESNI",
             "Intel Sandy Bridge or AMD x8 AES-NI instructions detected."),
        Line(0.0, c, 0, "SIMD", "SIMD optimization level: AVX2"),
        Line(0.11, c, 0, "WriteDaemon.UsingWIJFile", f"Using WIJ file: {mgr}/IRIS.WIJ", "wij.file"),
        Line(0.004, c, 0, G, "\n" + banner(ctx), "lifecycle.startup"),
        Line(0.009, ctx.pids.wrtdmn, 0, "WriteDaemon.Started", "Write daemon started.",
             "writedaemon.started"),
    ]  # fmt: skip
    if ctx.first_start:
        out.insert(-2, Line(0.0, c, 0, G, "No journaling info from prior system"))
    return out


def banner(ctx: StartContext) -> str:
    mgr = f"{ctx.install}mgr"
    return (
        f"Startup of InterSystems IRIS [{PRODUCT_BANNER}]\n"
        f"\tin {ctx.install}bin/\n"
        f"\twith mgr: {mgr}\n"
        f"\twith wij: {mgr}/IRIS.WIJ\n"
        f"\tfrom: {mgr}/\n"
        "  OS=[Linux], version=[#1 SMP PREEMPT_DYNAMIC], release=[6.1.0-emulated], "
        "machine=[x86_64]\n"
        f"  nodename=[{ctx.nodename}].\n"
        "  numasyncwijbuf: 2, wdwrite_asyncio_max: 64, wijdirectio: on, synctype: 3\n"
        "  System Initialized."
    )


def startup_config(ctx: StartContext) -> list[Line]:
    """From the instance line to the journal start: the CPF is read here."""
    s = ctx.pids.stu
    mgr = f"{ctx.install}mgr/"
    out = [
        Line(0.001, s, 0, "Database.MountedRW", f"Mounted database {mgr} (SFN 0) read-write.",
             "database.mounted"),
        Line(0.011, s, 0, "Database.MountedRO", f"Mounted database {mgr}irislib/ (SFN 1) "
             "read-only. Database label is marked read-only. ", "database.mounted"),
        Line(0.003, s, 0, U, f"Instance '{ctx.name}' starting on node {ctx.nodename} by user "
             f"'{ctx.user}' on {ctx.utc_text} UTC", "lifecycle.startup"),
        Line(0.0, s, 0, U, f"Using parameters from file '{ctx.cpf_path}'", "lifecycle.config_loaded"),
        Line(0.001, s, 0, U, "Loading DLLs"),
        Line(0.001, s, 0, U, "Switching to temporary %SYS Namespace"),
        Line(0.007, s, 0, "Database.MountedRW", f"Mounted database {mgr}irissecurity/ (SFN 2) "
             "read-write.", "database.mounted"),
        Line(0.04, s, 0, "Database.MountedRW", f"Mounted database {mgr}iristemp/ (SFN 3) "
             "read-write.", "database.mounted"),
        Line(0.004, s, 0, U, "Switching to default %SYS Namespace"),
        Line(0.13, ctx.pids.of(4), 0, U, "Log Monitor Started"),
        Line(0.1, ctx.pids.clean, 0, U, "Clean Daemon Started"),
    ]  # fmt: skip
    if ctx.cpf_changed:
        out.append(Line(0.003, s, 1, U, f"Configuration file {ctx.cpf_path} is not the same as "
                        "when last shut down", "config.changed"))  # fmt: skip
    out.append(Line(0.1, s, 0, U, f"Updating configuration information from {ctx.cpf_path}",
                    "config.changed"))  # fmt: skip
    return out + _journal_recovery(ctx)


def _journal_recovery(ctx: StartContext) -> list[Line]:
    s = ctx.pids.stu
    out = [Line(0.01, s, 0, U, "Performing Journal Recovery", "journal.recovery")]
    if ctx.previous_clean or ctx.first_start:
        out += [
            Line(0.001, s, 0, U, "Graceful system shutdown, journal restore not required"),
            Line(0.0, s, 0, U, "Graceful system shutdown, transaction rollback not required"),
        ]
    else:
        out.insert(0, Line(0.0, s, 2, U, "Previous system shutdown was abnormal, system forced "
                           "down or crashed", "lifecycle.abnormal_shutdown"))  # fmt: skip
        out += [
            Line(1.0, s, 0, U, "Performing Transaction Rollback if necessary"),
            Line(0.07, s, 0, U, "No open transactions to roll back"),
        ]
    out.append(Line(0.005, s, 0, U, f"START: {ctx.journal_file}"))
    if ctx.alternate_same:
        out.append(Line(0.0, s, 1, G, "Warning: Alternate and primary journal directories are "
                        "the same", "journal.directory_invalid"))  # fmt: skip
    out += [
        Line(0.01, s, 0, G, "INTERSYSTEMS IRIS JOURNALING SYSTEM MESSAGE\nJournaling started to: "
             f"{ctx.journal_file}", "journal.switch"),
        Line(0.0, s, 0, U, f"Journaling to {ctx.journal_file} started.", "journal.switch"),
    ]  # fmt: skip
    return out


SECTIONS_BEFORE_NETWORK = ("WorkQueues", "Startup", "config")
SECTIONS_AFTER_NAMESPACES = ("Miscellaneous", "Devices", "DeviceSubTypes", "MagTape", "IO", "SQL")


def startup_tail(ctx: StartContext) -> list[Line]:
    """Section processing, the superserver, System Monitor and `Enabling logons`."""
    s = ctx.pids.stu
    out = [Line(0.001, s, 0, U, f"Processing {name} section", "lifecycle.config_loaded")
           for name in SECTIONS_BEFORE_NETWORK]  # fmt: skip
    out += [
        Line(0.08, s, 0, U, "Initializing Security system"),
        Line(0.09, s, 0, U, "Processing Network section", "lifecycle.config_loaded"),
        Line(0.001, s, 0, U, "Activating Network"),
        Line(0.006, s, 0, U, "Processing Databases section", "lifecycle.config_loaded"),
        Line(0.004, s, 0, "Database.MountedRW", f"Mounted database {ctx.install}mgr/irisaudit/ "
             "(SFN 4) read-write.", "database.mounted"),
        Line(0.004, s, 0, U, "Processing Namespaces section", "lifecycle.config_loaded"),
        Line(0.02, s, 0, U, "Namespace changes have been activated"),
        Line(0.009, ctx.pids.superserver, 0, U,
             f"Starting superserver on port {ctx.superserver_port}", "lifecycle.startup"),
    ]  # fmt: skip
    out += [Line(0.002, s, 0, U, f"Processing {name} section", "lifecycle.config_loaded")
            for name in SECTIONS_AFTER_NAMESPACES]  # fmt: skip
    out += [
        Line(0.003, s, 0, "Database.MountedRW", f"Mounted database {ctx.install}mgr/user/ "
             "(SFN 5) read-write.", "database.mounted"),
        Line(0.015, ctx.pids.monitor, 0, U, "[SYSTEM MONITOR] System Monitor started in %SYS"),
        Line(0.2, s, 0, U, "Enabling logons", "lifecycle.startup"),
        Line(1.0, ctx.pids.of(40), 0, U, "Starting TASKMGR"),
        Line(0.5, ctx.pids.of(13), 0, U, "LMF Info:  Licensed for 8 cores.", "license.info"),
    ]  # fmt: skip
    return out


_DAEMONS = ("EXPDMN", "JRNDMN", "GARCOL", "AUXWD #1", "AUXWD #2", "AUXWD #3", "AUXWD #4")


def shutdown_lines(pids: Pids, user: str) -> list[Line]:
    """IRIS's clean shutdown, from `User … shutting down` to `Shutdown complete`."""
    p = pids.shutdown
    steps = (
        "Notifying Clients", "No user shutdown routines to execute", "Stopping User Jobs",
        "Stopping Network Servers", "Withdrawing from License Domain", "Stopping Client Networking",
        "Updating Journal File", "Journal restore not required at next startup",
        "Transaction rollback not required at next startup", "Removing database locks",
        "Waiting for database updates to complete", "Database updates complete",
        "Stopping System Jobs",
    )  # fmt: skip
    out = [
        Line(0.0, p, 0, U, f"User '{user}' shutting down InterSystems IRIS", "lifecycle.shutdown")
    ]
    out += [Line(0.01, p, 0, U, step, "lifecycle.shutdown") for step in steps]
    out += [Line(0.02, pids.of(43 + i), 0, G, f"{daemon} exited due to system shutdown",
                 "lifecycle.shutdown") for i, daemon in enumerate(_DAEMONS)]  # fmt: skip
    out += [
        Line(0.006, pids.wrtdmn, 0, G, "No blocks pending in WIJ file"),
        Line(0.0, pids.wrtdmn, 0, G, "WRTDMN exited due to system shutdown", "lifecycle.shutdown"),
        Line(0.005, pids.control, 0, G, "CONTROL exited due to system shutdown", "lifecycle.shutdown"),
        Line(0.009, p, 0, U, "Shutdown complete", "lifecycle.shutdown"),
    ]  # fmt: skip
    return out


def forced_lines(pids: Pids, user: str, users_killed: int, wait: float) -> list[Line]:
    """A shutdown the write daemon cannot finish (WDSTOP set), as in HACK2 11/28/25."""
    p = pids.shutdown
    return [
        Line(0.0, p, 0, U, f"User '{user}' shutting down InterSystems IRIS", "lifecycle.shutdown"),
        Line(0.0, p, 1, U, "Shutdown detected WDSTOP set", "lifecycle.abnormal_shutdown"),
        Line(0.001, p, 0, U, "Attempting to write journal buffers to disk"),
        Line(0.0, p, 0, U, "Journal buffers written to disk"),
        Line(wait, p, 3, U, "WDSTOP set, system being forced", "lifecycle.abnormal_shutdown"),
        Line(0.007, pids.control, 0, G, "CONTROL exited due to system shutdown", "lifecycle.shutdown"),
        Line(0.0, pids.wrtdmn, 0, G, "WRTDMN exited due to system shutdown", "lifecycle.shutdown"),
        irisforce_line(pids.of(401), users_killed),
    ]  # fmt: skip


def irisforce_line(pid: int, users: int) -> Line:
    return Line(0.14, pid, 0, G, f"irisforce killed 0 system and {users} user processes.",
                "lifecycle.abnormal_shutdown")  # fmt: skip


def cpf_failure_lines(problems: tuple[Problem, ...], ctx: StartContext) -> list[Line]:
    """A CPF that does not validate: each problem at severity 3, then IRIS gives up."""
    s = ctx.pids.stu
    out = [Line(0.03, s, 3, U, problem.message, "config.cpf_error") for problem in problems]
    out.append(Line(0.0, s, 3, U, f"Error: Parsing CPF file {ctx.cpf_path} - Shutting down the "
                    "system : $zu(56,2)=$Id: //iris/2025.1.0/kernel/common/src/sqio.c#1 $ 3658 0",
                    "config.cpf_error"))  # fmt: skip
    out.append(Line(5.0, s, 0, U, f"User '{ctx.user}' shutting down InterSystems IRIS",
                    "lifecycle.shutdown"))  # fmt: skip
    out += [Line(0.01, s, 0, U, step, "lifecycle.shutdown")
            for step in ("Notifying Clients", "Stopping User Jobs", "Stopping Network Servers",
                         "Removing database locks", "Waiting for database updates to complete")]  # fmt: skip
    return out


def allocation_failed_lines(ctx: StartContext) -> list[Line]:
    # Wording ours: the real text of an aborted allocation (memlock 64/128) is not known.
    return [Line(0.0, ctx.pids.control, 3, G, "Startup aborted: shared memory could not be "
                 "allocated as required by the 'memlock' configuration parameter.",
                 "memory.shm_failed")]  # fmt: skip
