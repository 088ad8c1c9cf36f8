"""The published contracts: pydantic models of what irisd emits, and their JSON Schema files.

`LogEntryModel` is what `irisd classify --json` prints per entry; `EventModel` is the JSON form
of an event (`irisd.core.eventjson`) that the API, the sinks and the jsonl file carry. The schema
files in `irisd/schemas/` and `docs/schemas/` are generated from these models
(`python -m irisd.contracts`), and a test fails when they drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"
Code = Annotated[
    str, Field(pattern=r"^[a-z]+\.[a-z0-9_]+(\.[a-z0-9_]+)?$", description="taxonomy code")
]
SeverityValue = Annotated[
    int, Field(ge=0, le=3, description="0 info, 1 warning, 2 severe, 3 fatal")
]
Timestamp = Annotated[
    str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", description="ISO 8601 UTC")
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogEntryModel(_Strict):
    """One messages.log entry as `irisd classify --json` prints it."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, title="irisd LogEntry v" + SCHEMA_VERSION
    )

    timestamp: Timestamp | None = Field(description="null only for an unparsed entry")
    pid: int | None = Field(ge=0, description="writer's pid; null for the WIJ recovery block")
    severity: SeverityValue
    category: str | None
    code: Code
    error_type: str
    message: str = Field(description="continuation lines joined by newlines")
    repeat: int = Field(
        ge=1, description="occurrences this entry stands for (IRIS's repeated N times)"
    )
    offset: int = Field(ge=0, description="byte offset of the entry in its file")
    reason: str | None = Field(default=None, description="why an entry did not parse")


class EventModel(_Strict):
    """A classified event, as published."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="irisd Event v" + SCHEMA_VERSION)

    event_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="stable across re-reads")
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="W3C trace id, never all zeros")
    host: str
    instance: str
    source: str = Field(description="identity of the log file: device:inode:fingerprint:generation")
    offset: int = Field(ge=0)
    timestamp: Timestamp | None
    severity: SeverityValue
    severity_name: Literal["info", "warning", "severe", "fatal"]
    code: Code
    error_type: str
    category: str | None
    pid: int | None
    message: str
    repeat: int = Field(ge=1)
    labels: dict[str, str]


SCHEMAS: dict[str, type[BaseModel]] = {
    "log_entry.schema.json": LogEntryModel,
    "event.schema.json": EventModel,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(root: Path) -> None:
    for directory in (root / "irisd" / "schemas", root / "docs" / "schemas"):
        directory.mkdir(parents=True, exist_ok=True)
        for name, model in SCHEMAS.items():
            (directory / name).write_text(render(model), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
