"""The monitor side of an incident bundle: `metrics.prom` (a series of `/api/monitor/metrics`
scrapes) and `host.json` (kernel parameters and host facts). Pure: values in, text out.

A scrape reads what the live instance would serve at that moment: the gauges of the latest
scenario tick (background values plus what the scenario moves), the labelled database and journal
series, and the alert counters as Log Monitor would have them. Series are written in Prometheus
text format, one family after another, each sample stamped in milliseconds, so the file can be
read with any text-format parser. IRIS serves its metrics without TYPE lines; this file adds
`# TYPE … gauge` so that parsers gather each family's samples in one place, and `# HELP` marks the
two series IRIS does not have, as the live emulator does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from irisd.emulator import sequences
from irisd.emulator.metrics import HEALTH_STATE, NON_STANDARD
from irisd.emulator.model import HostFacts
from irisd.emulator.world import Tick

SCRAPE_INTERVAL = timedelta(seconds=15)  # SAM's Prometheus scrapes every 15 s (FACTS §5.6)
_EPOCH = datetime(1970, 1, 1)
_LABELLED = {"iris_db_size_mb", "iris_db_max_size_mb", "iris_jrn_free_space"}
_CPU = (("CSPSRV", 2), ("GARCOL", 0), ("JRNDMN", 0), ("WRTDMN", 1))

# A 64-bit kernel's defaults (FACTS §6.3: modern kernels leave shmmax/shmall near unlimited;
# no InterSystems guidance exists for kernel.sem, so the kernel's own default stands).
KERNEL_DEFAULTS = {
    "kernel.msgmni": "32000",
    "kernel.sem": "32000 1024000000 500 32000",
    "kernel.shmall": "18446744073692774399",
    "kernel.shmmax": "18446744073692774399",
    "kernel.shmmni": "4096",
}


@dataclass(frozen=True, slots=True)
class Scrape:
    at: datetime  # the instant the scrape was taken, in messages.log's clock
    samples: tuple[tuple[str, str, float], ...]  # (metric name, label text, value)


@dataclass(frozen=True, slots=True)
class Where:
    """The instance's directories, for the `dir` labels."""

    mgr: str
    journal_dir: str
    db_max_mb: int  # the USER database's maximum size, 0 = unlimited


def scrape_times(first: datetime, last: datetime) -> list[datetime]:
    count = (last - first) // SCRAPE_INTERVAL + 1
    return [first + n * SCRAPE_INTERVAL for n in range(count)]


def scrapes(
    times: Sequence[datetime],
    ticks: Sequence[tuple[datetime, Tick]],
    alert_times: Sequence[datetime],
    where: Where,
) -> list[Scrape]:
    """One scrape per instant, from the latest tick at or before it."""
    out: list[Scrape] = []
    for at in times:
        tick = _latest(ticks, at)
        if tick is not None:
            alerts = sum(1 for t in alert_times if t <= at)
            out.append(Scrape(at, tuple(_samples(tick, alerts, where))))
    return out


def _latest(ticks: Sequence[tuple[datetime, Tick]], at: datetime) -> Tick | None:
    found = None
    for when, tick in ticks:
        if when > at:
            break
        found = tick
    return found


def _samples(tick: Tick, alerts: int, where: Where) -> Iterable[tuple[str, str, float]]:
    gauges = tick.metrics
    for name in sorted(gauges):
        if name not in _LABELLED:
            yield name, "", gauges[name]
    user = f'id="USER",dir="{where.mgr}user/"'
    yield "iris_db_size_mb", user, gauges.get("iris_db_size_mb", 960.0)
    yield "iris_db_max_size_mb", user, gauges.get("iris_db_max_size_mb", float(where.db_max_mb))
    free = gauges.get("iris_jrn_free_space", 38000.0)
    yield "iris_jrn_free_space", f'id="primary",dir="{where.journal_dir}"', free
    yield "iris_jrn_free_space", f'id="WIJ",dir="{where.mgr}"', 38000.0
    for proc, pct in _CPU:
        yield "iris_cpu_pct", f'id="{proc}"', float(pct)
    yield "iris_system_alerts", "", float(alerts)
    yield "iris_system_alerts_log", "", float(alerts)
    yield "iris_system_alerts_new", "", 1.0 if alerts else 0.0  # nobody reads /alerts here
    yield "iris_system_state", "", float(HEALTH_STATE.get(tick.health, 0))


def render(series: Sequence[Scrape], *, skew: timedelta = timedelta(0)) -> str:
    """Prometheus text: families by name, series by labels, samples in time order."""
    rows: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for scrape in series:
        stamp = (scrape.at + skew - _EPOCH) // timedelta(milliseconds=1)
        for name, labels, value in scrape.samples:
            rows.setdefault((name, labels), []).append((stamp, value))
    lines = [f"# {len(series)} scrapes of /api/monitor/metrics, timestamps in ms since the epoch"]
    family = ""
    for name, labels in sorted(rows):
        if name != family:
            lines += _family_header(name)
        family = name
        series_name = f"{name}{{{labels}}}" if labels else name
        lines += [f"{series_name} {_number(v)} {ms}" for ms, v in rows[(name, labels)]]
    return "\n".join(lines) + "\n"


def _family_header(name: str) -> list[str]:
    help_line = f"# HELP {name} non-standard: emulator only, IRIS has no such metric"
    return [*([help_line] if name in NON_STANDARD else []), f"# TYPE {name} gauge"]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 3))


def host_facts(
    host: HostFacts, *, kernel: Mapping[str, str], iris: Mapping[str, object]
) -> dict[str, object]:
    """host.json: what an operator's collection script reads from the host and the instance."""
    params = {**KERNEL_DEFAULTS, "vm.nr_hugepages": str(host.hugepages_total), **kernel}
    return {
        "hostname": host.nodename,
        "timezone": "UTC",  # messages.log's local time is UTC on the emulated host
        "cpus": host.cpus,
        "memory": {
            "mem_total_mb": host.mem_total_mb,
            "hugepage_size_kb": host.hugepage_size_kb,
            "hugepages_total": host.hugepages_total,
        },
        "kernel": dict(sorted(params.items())),
        "iris": {
            "version": sequences.VERSION,
            "build": sequences.BUILD,
            "version_id": sequences.VERSION_ID,
            "product": sequences.PRODUCT_BANNER,
            **iris,
        },
    }
