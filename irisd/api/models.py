"""Response bodies of the API as pydantic models: the source of `/openapi.json`'s schemas.

Handlers build plain dicts for speed (`irisd.core.eventjson` is the one JSON form of an event);
these models describe those dicts, and the tests validate real responses against them, so the
document and the wire cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Health(_Out):
    """The API answers. Carries nothing about the host or the daemon."""

    status: Literal["ok"]
    time: datetime = Field(description="The daemon's clock, UTC: to spot clock skew.")


class ErrorDetail(_Out):
    field: str | None = Field(description="The parameter or header at fault, if one is.")
    reason: str


class ErrorBody(_Out):
    """Every non-2xx response."""

    error: ErrorDetail


class EventOut(_Out):
    """A classified messages.log entry."""

    event_id: str = Field(description="Stable across re-reads of the same bytes.")
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="W3C trace id.")
    host: str
    instance: str
    source: str = Field(description="Which log file the entry came from.")
    offset: int = Field(ge=0, description="Byte offset of the entry in its file.")
    timestamp: datetime | None = Field(description="ISO 8601, UTC; null if the log gave none.")
    severity: int = Field(ge=0, le=3)
    severity_name: Literal["info", "warning", "severe", "fatal"]
    code: str = Field(description="Taxonomy code, e.g. lock.table_full.")
    error_type: str
    category: str | None
    pid: int | None
    message: str
    repeat: int = Field(ge=1, description="How many times IRIS said it (`...(repeated N times)`).")
    labels: dict[str, str]


class EventPage(_Out):
    """Newest first. `next` is the `after` of the following page, or null on the last one."""

    events: list[EventOut]
    next: str | None
