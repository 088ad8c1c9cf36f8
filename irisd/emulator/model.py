"""Typed values the emulated instance runs on: its settings (read from a validated CPF), the host
it believes it runs on, and the shared-memory arithmetic IRIS performs at start-up. Pure.

Memory model (ARES §1.1.1 and the real start-up lines of HACK2): automatic global buffers are 25%
of physical memory; automatic routine buffers 10% of global buffers clamped to 80-1020 MB; an
automatic heap (`gmheap=0`) is 3% of global buffers clamped to 300 MB-2 GB; buffer descriptors
take about 7.5% of global buffers. Huge pages are used only if the pool holds the whole segment;
otherwise IRIS retries with standard pages, and if memory is short it cuts the request by 1/8 and
retries (memlock=0). memlock bit 64 (LargePagesRequired) turns the fallback into an abort.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from irisd.core.cpf import CpfDocument

LARGE_PAGES_REQUIRED = 64
BACKOFF_DISABLED = 128


@dataclass(frozen=True, slots=True)
class EcpServer:
    name: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Settings:
    globals_mb: int  # 0 = automatic
    routines_mb: int  # 0 = automatic
    gmheap_kb: int  # 0 = automatic
    locksiz: int  # bytes, 0 = bounded by the heap
    bbsiz_kb: int  # -1 = unlimited
    jrnbufs_mb: int
    memlock: int
    superserver_port: int
    web_port: int
    bind_address: str
    max_console_log_mb: int
    shutdown_timeout: int
    journal_dir: str
    alternate_journal_dir: str
    days_before_purge: int
    freeze_on_error: bool
    ecp_servers: tuple[EcpServer, ...]
    ecp_reconnect_interval: int
    ecp_reconnect_duration: int
    databases: tuple[tuple[str, str], ...]


def _int(doc: CpfDocument, section: str, name: str, default: int) -> int:
    value = doc.get(section, name)
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _sum_list(value: str | None) -> int:
    if not value:
        return 0
    return sum(int(p) for p in value.split(",") if p.strip().isdigit())


def settings_from(doc: CpfDocument) -> Settings:
    """Read the parameters the emulator uses from an already validated document."""
    return Settings(
        globals_mb=_sum_list(doc.get("config", "globals")),
        routines_mb=_sum_list(doc.get("config", "routines")),
        gmheap_kb=_int(doc, "config", "gmheap", 0),
        locksiz=_int(doc, "config", "locksiz", 0),
        bbsiz_kb=_int(doc, "config", "bbsiz", -1),
        jrnbufs_mb=_int(doc, "config", "jrnbufs", 64),
        memlock=_int(doc, "config", "memlock", 0),
        superserver_port=_int(doc, "Startup", "DefaultPort", 1972),
        web_port=_int(doc, "Startup", "WebServerPort", 52773),
        bind_address=doc.get("Startup", "DefaultPortBindAddress") or "127.0.0.1",
        max_console_log_mb=_int(doc, "Startup", "MaxConsoleLogSize", 5),
        shutdown_timeout=_int(doc, "Startup", "ShutdownTimeout", 300),
        journal_dir=doc.get("Journal", "CurrentDirectory") or "",
        alternate_journal_dir=doc.get("Journal", "AlternateDirectory") or "",
        days_before_purge=_int(doc, "Journal", "DaysBeforePurge", 2),
        freeze_on_error=_int(doc, "Journal", "FreezeOnError", 0) == 1,
        ecp_servers=tuple(_ecp(name, value) for name, value in doc.params("ECPServers")),
        ecp_reconnect_interval=_int(doc, "ECP", "ClientReconnectInterval", 5),
        ecp_reconnect_duration=_int(doc, "ECP", "ClientReconnectDuration", 1200),
        databases=doc.params("Databases"),
    )


def _ecp(name: str, value: str) -> EcpServer:
    host, _, port = value.partition(",")
    return EcpServer(name, host.strip(), int(port) if port.strip().isdigit() else 0)


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the emulated host offers: physical memory, huge pages, CPUs, node name."""

    mem_total_mb: int
    hugepages_total: int
    hugepage_size_kb: int
    cpus: int
    nodename: str


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """The split IRIS logs as `Allocated NMB shared memory` and its breakdown line."""

    globals_mb: int
    routines_mb: int
    journal_mb: int
    descriptors_mb: int
    heap_mb: int
    ecp_mb: int
    misc_mb: int
    auto_globals: bool

    @property
    def total_mb(self) -> int:
        return (
            self.globals_mb + self.routines_mb + self.journal_mb + self.descriptors_mb
            + self.heap_mb + self.ecp_mb + self.misc_mb
        )  # fmt: skip

    def breakdown(self) -> str:
        return (
            f"{self.globals_mb}MB global buffers, {self.routines_mb}MB routine buffers, "
            f"{self.journal_mb}MB journal buffers, {self.descriptors_mb}MB buffer descriptors, "
            f"{self.heap_mb}MB heap, {self.ecp_mb}MB ECP, {self.misc_mb}MB miscellaneous"
        )

    def scaled(self, factor: float) -> MemoryPlan:
        """IRIS's back-off: global and routine buffers reduced, the rest kept."""
        g = int(self.globals_mb * factor)
        r = int(self.routines_mb * factor)
        return MemoryPlan(g, r, self.journal_mb, _descriptors(g, r), self.heap_mb, self.ecp_mb,
                          self.misc_mb, self.auto_globals)  # fmt: skip


def _descriptors(globals_mb: int, routines_mb: int) -> int:
    return max(4, round(globals_mb * 0.0753 + routines_mb * 0.003))


def heap_mb(settings: Settings, globals_mb: int) -> int:
    if settings.gmheap_kb:
        return settings.gmheap_kb // 1024
    return min(max(round(globals_mb * 0.03), 300), 2048)


def memory_plan(settings: Settings, host: HostFacts) -> MemoryPlan:
    auto = settings.globals_mb == 0
    g = host.mem_total_mb // 4 if auto else settings.globals_mb
    r = settings.routines_mb or min(max(g // 10, 80), 1020)
    return MemoryPlan(g, r, settings.jrnbufs_mb, _descriptors(g, r), heap_mb(settings, g), 5, 16,
                      auto)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Allocation:
    """How start-up's allocation went: each attempt that failed, then the plan that held."""

    failed_hugepages_mb: int | None  # the size that did not fit in huge pages
    failed_standard: tuple[MemoryPlan, ...]  # plans that did not fit in memory (back-off)
    plan: MemoryPlan | None  # None: start-up aborts
    huge_pages: bool


def hugepages_needed(total_mb: int, host: HostFacts) -> int:
    return math.ceil(total_mb * 1024 / host.hugepage_size_kb)


def allocate(plan: MemoryPlan, host: HostFacts, memlock: int) -> Allocation:
    if host.hugepages_total >= hugepages_needed(plan.total_mb, host):
        return Allocation(None, (), plan, huge_pages=True)
    failed_huge = plan.total_mb if host.hugepages_total else None
    if failed_huge is not None and memlock & LARGE_PAGES_REQUIRED:
        return Allocation(failed_huge, (), None, huge_pages=False)
    failed: list[MemoryPlan] = []
    current = plan
    # Standard pages come from what the huge-page pool leaves of physical memory.
    available = host.mem_total_mb - host.hugepages_total * host.hugepage_size_kb // 1024
    while current.total_mb > available * 0.9:
        failed.append(current)
        if memlock & BACKOFF_DISABLED or len(failed) > 8:
            return Allocation(failed_huge, tuple(failed), None, huge_pages=False)
        current = current.scaled(7 / 8)
    return Allocation(failed_huge, tuple(failed), current, huge_pages=False)
