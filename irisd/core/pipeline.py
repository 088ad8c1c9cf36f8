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
    tz: tzinfo | None = None,
    classifier: Classifier | None = None,
    limits: Limits | None = None,
) -> list[Classified]:
    """Parse and classify a whole messages.log text. `tz` defaults to UTC; `classifier` to the
    default rule table (the one read this function may cause: irisd's own packaged rules)."""
    if classifier is None:
        from irisd.rules import default_classifier  # packaged data, read once

        classifier = default_classifier()
    clock = LocalClock(tz or UTC)
    return [
        classify_entry(raw, clock, classifier) for raw in assemble(text.encode(), limits=limits)
    ]
