"""Background noise of a healthy instance: the ordinary entries and metric values that surround
any incident (database expansions, journal rolls and compression, System Monitor latency
warnings now and then, licence-server chatter). Pure; shaped on the real sample log.
"""

from __future__ import annotations

import random

from irisd.emulator.logfmt import Line
from irisd.emulator.world import World

G, U = "Generic.Event", "Utility.Event"


def background(world: World, rng: random.Random) -> tuple[Line, ...]:
    """Zero or more everyday entries for one tick."""
    out: list[Line] = []
    roll = rng.random()
    if roll < 0.08:
        out += _expansion(world, rng)
    elif roll < 0.12:
        out += _journal_roll(world, rng)
    elif roll < 0.14:
        db = rng.choice(("user/", "irislocaldata/", "iristemp/"))
        latency = round(rng.uniform(1000, 1600), 3)
        out.append(Line(rng.uniform(0.1, 2), world.pids.monitor, 1, U, f"[SYSTEM MONITOR] "
                        f"DBLatency({world.mgr}{db}) Warning: DBLatency = {latency} ( Warnvalue "
                        "is 1000).", "monitor.alert"))  # fmt: skip
    elif roll < 0.16:
        out.append(Line(rng.uniform(0.1, 2), world.pids.monitor, 0, U,
                        "[SYSTEM MONITOR] Alert state cleared.", "monitor.cleared"))  # fmt: skip
    elif roll < 0.18:
        out.append(
            Line(
                rng.uniform(0.1, 2),
                world.pids.of(13),
                0,
                U,
                "LMF Info:  Connected to license server 127.0.0.1,4002",
                "license.info",
            )
        )
    return tuple(out)


def _expansion(world: World, rng: random.Random) -> list[Line]:
    db = world.mgr + rng.choice(("user/", "irislocaldata/", "iristemp/", "irisaudit/"))
    size = rng.choice((10, 16, 34, 100))
    pid = world.pids.of(32)
    return [
        Line(rng.uniform(0.1, 2), pid, 0, "Database.StartExpansion",
             f"Starting Expansion for database {db}. {size} MB requested.", "database.expansion"),
        Line(rng.uniform(0.005, 0.03), pid, 0, "Database.FullExpansion",
             f"Expansion completed for database {db}. Expanded by {size} MB.",
             "database.expansion"),
    ]  # fmt: skip


def _journal_roll(world: World, rng: random.Random) -> list[Line]:
    jdir = world.settings.journal_dir or world.mgr + "journal/"
    seq = 2 + world.tick // 7
    ratio = round(rng.uniform(8, 18), 1)
    return [
        Line(rng.uniform(0.1, 2), world.pids.of(34), 0, G, "INTERSYSTEMS IRIS JOURNALING SYSTEM "
             f"MESSAGE\nAutomatic journal file roll to: {jdir}20250101.{seq:03d}",
             "journal.switch"),
        Line(rng.uniform(0.1, 1), world.pids.of(35), 0, U, f"Journal File Compression: "
             f"Compressed {jdir}20250101.{seq - 1:03d}, ratio = {ratio}"),
    ]  # fmt: skip


def metrics(world: World, rng: random.Random) -> dict[str, float]:
    """The gauges of a healthy instance at this tick; scenarios override what they move."""
    units = world.license_units
    users = min(units, 6 + world.sessions)
    return {
        "iris_cpu_usage": float(rng.randrange(8, 30)),
        "iris_process_count": float(38 + world.sessions + rng.randrange(0, 5)),
        "iris_license_consumed": float(users),
        "iris_license_available": float(units - users),
        "iris_license_percent_used": round(100 * users / units, 1),
        "iris_csp_sessions": float(rng.randrange(0, 4)),
        "iris_glo_ref_per_sec": float(rng.randrange(2000, 9000)),
        "iris_glo_update_per_sec": float(rng.randrange(200, 900)),
        "iris_phys_reads_per_sec": float(rng.randrange(5, 60)),
        "iris_phys_writes_per_sec": float(rng.randrange(1, 30)),
        "iris_trans_open_count": float(rng.randrange(0, 6)),
        "iris_wd_cycle_time": round(rng.uniform(0.2, 1.5), 2),
        "iris_wd_suspended": 0.0,
        "iris_jrn_free_space": 38_000.0,
        "iris_db_size_mb": 960.0,
        "iris_smh_percent_full": round(rng.uniform(18, 30), 1),
        "iris_lock_table_percent_full": round(rng.uniform(2, 9), 1),
        "iris_ecp_conn": float(len(world.settings.ecp_servers)),
    }
