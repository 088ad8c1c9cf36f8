"""`/api/monitor/metrics`: Prometheus text with IRIS's metric names (FACTS §5.1).

Values come from the last scenario tick (background gauges plus what the scenario moves) and the
alert counters. Labels follow what real output shows: `id` for databases (with `dir`), journal
directories (`primary`/`secondary`/`WIJ`) and process types. `iris_lock_table_percent_full` and
`iris_process_errors` are ours: IRIS has no lock-table metric (OPERATIONS §5.1) and no error
counter; they are marked non-standard in their HELP text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from irisd.emulator.instance import Instance

HEALTH_STATE = {"ok": 0, "warn": 1, "alert": 2, "hung": 3}
NON_STANDARD = {"iris_lock_table_percent_full", "iris_process_errors"}
_LABELLED = {"iris_db_size_mb", "iris_db_max_size_mb", "iris_jrn_free_space"}


def _value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def render_metrics(instance: Instance) -> str:
    gauges = dict(instance.tick.metrics)
    mgr = instance.paths.install + "mgr/"
    lines: list[str] = []
    for name in sorted(gauges):
        if name in NON_STANDARD:
            lines.append(f"# HELP {name} non-standard: emulator only, IRIS has no such metric")
        if name not in _LABELLED:
            lines.append(f"{name} {_value(gauges[name])}")
    size = gauges.get("iris_db_size_mb", 960.0)
    lines.append(f'iris_db_size_mb{{id="USER",dir="{mgr}user/"}} {_value(size)}')
    limit = gauges.get(
        "iris_db_max_size_mb", float(instance.state.get("databases", {}).get("USER", 0))
    )
    lines.append(f'iris_db_max_size_mb{{id="USER",dir="{mgr}user/"}} {_value(limit)}')
    jdir = instance.settings.journal_dir
    free = gauges.get("iris_jrn_free_space", 38000.0)
    lines.append(f'iris_jrn_free_space{{id="primary",dir="{jdir}"}} {_value(free)}')
    lines.append(f'iris_jrn_free_space{{id="WIJ",dir="{mgr}"}} 38000')
    for proc, pct in (("WRTDMN", 1), ("JRNDMN", 0), ("GARCOL", 0), ("CSPSRV", 2)):
        lines.append(f'iris_cpu_pct{{id="{proc}"}} {pct}')
    writer = instance.writer
    lines += [
        f"iris_system_alerts {writer.alerts_total}",
        f"iris_system_alerts_log {writer.alerts_total}",
        f"iris_system_alerts_new {1 if writer.pending else 0}",
        f"iris_system_state {HEALTH_STATE.get(instance.tick.health, 0)}",
    ]
    return "\n".join(lines) + "\n"
