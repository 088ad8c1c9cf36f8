"""What to do with a sink's answer, and how long to wait before trying again.

The decision table (first match wins):

    no answer (connection error, timeout)   RETRY   forever, with backoff
    2xx                                     ACK
    408, 429                                RETRY
    413                                     SPLIT   (a single event still too large: DEAD)
    501                                     DEAD    the receiver will never implement it
    other 4xx                               DEAD    the request is wrong; retrying cannot help
    5xx                                     RETRY
    anything else (1xx, 3xx)                RETRY   unexpected: keep the events and let the
                                                    retry counter tell the operator

Backoff is exponential with full jitter: the n-th retry waits a uniform random time in
[0, min(cap, base * 2**n)), so many daemons recovering together do not arrive in step. A
`Retry-After` from the receiver (delay-seconds or an HTTP date) replaces the jittered delay but
is never obeyed past the cap. The random source and `now` are arguments: nothing here reads a
clock or a global generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum


class Verdict(StrEnum):
    ACK = "ack"
    RETRY = "retry"
    SPLIT = "split"
    DEAD = "dead"


def decide(status: int | None, *, batch_size: int) -> Verdict:
    """The decision table above; `status` None means no HTTP answer at all."""
    if status is None or status in (408, 429):
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.ACK
    if status == 413:
        return Verdict.SPLIT if batch_size > 1 else Verdict.DEAD
    if status == 501 or 400 <= status < 500:
        return Verdict.DEAD
    return Verdict.RETRY


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, in seconds."""

    base: float = 0.5
    cap: float = 60.0

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.cap >= self.base):
            raise ValueError(f"backoff needs 0 < base <= cap, got {self.base}, {self.cap}")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the wait before retry number `attempt` (0 for the first retry)."""
        # Past ~60 doublings every sane cap is reached; stop before 2**n overflows a float.
        if attempt >= 64 or self.base * math.pow(2, attempt) >= self.cap:
            return self.cap
        return self.base * math.pow(2, attempt)

    def delay(
        self, attempt: int, random: Callable[[], float], retry_after: float | None = None
    ) -> float:
        """How long to wait; `random()` returns a float in [0, 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        return random() * self.ceiling(attempt)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait according to a `Retry-After` header, or None if absent or unreadable.

    `now` must be timezone-aware; an HTTP date in the past means "now" (0 seconds).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        # The RFC's delay-seconds, or "1.5" as some receivers send. No `isdigit()` test first:
        # it is true for "²", which float() refuses.
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and math.isfinite(seconds) else None
    return _seconds_until(text, now)


def _seconds_until(http_date: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" in an HTTP date means UTC too
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
