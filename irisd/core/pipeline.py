"""Text in, classified entries out: the parse and classify steps joined, with no I/O.

`classify_text` is the convenience the emulator, the generators and tests use; the daemon and
`irisd classify` drive `LineAssembler`, `parse` and `Classifier` themselves to control batching.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import NamedTuple

from irisd.core.classify import UNPARSED, Classifier
from irisd.core.lines import Limits, RawEntry, assemble
from irisd.core.logline import LocalClock, parse
from irisd.core.model import Classification, LogEntry, Unparsed


class Classified(NamedTuple):
    entry: LogEntry | Unparsed
    classification: Classification


def classify_entry(raw: RawEntry, clock: LocalClock, classifier: Classifier) -> Classified:
    entry = parse(raw, clock)
    if isinstance(entry, Unparsed):
        return Classified(entry, UNPARSED)
    return Classified(entry, classifier.classify(entry.category, entry.text, entry.severity))


def classify_text(
    text: str,
    *,
    classifier: Classifier,
    tz: tzinfo | None = None,
    limits: Limits | None = None,
) -> list[Classified]:
    """Parse and classify a whole messages.log text. `tz` defaults to UTC. The caller brings the
    rule table (`irisd.rules.default_classifier()` for irisd's own): reading it is I/O."""
    clock = LocalClock(tz or UTC)
    return [
        classify_entry(raw, clock, classifier) for raw in assemble(text.encode(), limits=limits)
    ]
