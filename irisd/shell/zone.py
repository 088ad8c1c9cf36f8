"""The zone IRIS writes messages.log in: the configured one, else this host's."""

from __future__ import annotations

from zoneinfo import ZoneInfo


def host_zone(name: str) -> ZoneInfo:
    """`name` (an IANA zone) when given, else the host's /etc/localtime, else UTC (no zone file:
    the host runs in UTC)."""
    if name:
        return ZoneInfo(name)
    try:
        return ZoneInfo("localtime")
    except Exception:  # noqa: BLE001 - no /etc/localtime: the host runs in UTC
        return ZoneInfo("UTC")
