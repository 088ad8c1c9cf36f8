"""Pure payload builders, one module per sink: `webhook`, `alertmanager`, `jsonl`.

A builder turns stored events into the bytes a sink sends; the shared sender in
`irisd.shell.publisher` does the I/O and the decision table in `irisd.core.retry` decides what an
answer means. Builders take `Stored` values (the outbox's items satisfy it) so each event is
serialised once, when it is stored, and batches are joined from that text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from irisd.core.model import Event


class Stored(Protocol):
    """An event's JSON form (`irisd.core.eventjson.dumps_event`) with its id, and the event
    read back from that JSON for the builders that need its fields."""

    @property
    def event_id(self) -> str: ...

    @property
    def event(self) -> Event: ...

    @property
    def json(self) -> str: ...


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A POST to make: everything but the connection."""

    url: str
    headers: Mapping[str, str]
    body: bytes
