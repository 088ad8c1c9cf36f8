"""The delivery decision table, backoff with full jitter, and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from irisd.core.retry import Backoff, Verdict, decide, parse_retry_after

NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "batch", "verdict"),
    [
        pytest.param(None, 5, Verdict.RETRY, id="no-answer-retries"),
        pytest.param(200, 5, Verdict.ACK, id="200-acks"),
        pytest.param(202, 5, Verdict.ACK, id="202-acks"),
        pytest.param(204, 1, Verdict.ACK, id="204-acks"),
        pytest.param(408, 5, Verdict.RETRY, id="408-retries"),
        pytest.param(429, 5, Verdict.RETRY, id="429-retries"),
        pytest.param(500, 5, Verdict.RETRY, id="500-retries"),
        pytest.param(502, 5, Verdict.RETRY, id="502-retries"),
        pytest.param(503, 5, Verdict.RETRY, id="503-retries"),
        pytest.param(599, 5, Verdict.RETRY, id="599-retries"),
        pytest.param(501, 5, Verdict.DEAD, id="501-dead-letters"),
        pytest.param(413, 5, Verdict.SPLIT, id="413-splits"),
        pytest.param(413, 2, Verdict.SPLIT, id="413-splits-a-pair"),
        pytest.param(413, 1, Verdict.DEAD, id="413-single-event-dead-letters"),
        pytest.param(400, 5, Verdict.DEAD, id="400-dead-letters"),
        pytest.param(401, 5, Verdict.DEAD, id="401-dead-letters"),
        pytest.param(404, 5, Verdict.DEAD, id="404-dead-letters"),
        pytest.param(422, 5, Verdict.DEAD, id="422-dead-letters"),
        pytest.param(301, 5, Verdict.RETRY, id="unexpected-3xx-keeps-events"),
        pytest.param(101, 5, Verdict.RETRY, id="unexpected-1xx-keeps-events"),
    ],
)
def test_decision_table(status: int | None, batch: int, verdict: Verdict) -> None:
    assert decide(status, batch_size=batch) is verdict


def test_full_jitter_spans_zero_to_the_exponential_ceiling() -> None:
    backoff = Backoff(base=0.5, cap=30.0)
    assert backoff.delay(0, lambda: 0.0) == 0.0
    assert backoff.delay(0, lambda: 0.999) == pytest.approx(0.4995)
    assert backoff.delay(3, lambda: 0.5) == pytest.approx(2.0)  # 0.5 * 2**3 = 4, halved


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 1.0), (1, 2.0), (4, 16.0), (5, 20.0), (6, 20.0), (63, 20.0), (64, 20.0), (10_000, 20.0)],
)
def test_ceiling_doubles_until_the_cap(attempt: int, ceiling: float) -> None:
    assert Backoff(base=1.0, cap=20.0).ceiling(attempt) == ceiling


def test_retry_after_replaces_jitter_but_never_exceeds_the_cap() -> None:
    backoff = Backoff(base=0.1, cap=10.0)
    assert backoff.delay(0, lambda: 0.9, retry_after=3.0) == 3.0
    assert backoff.delay(0, lambda: 0.9, retry_after=3600.0) == 10.0
    assert backoff.delay(0, lambda: 0.9, retry_after=-5.0) == 0.0


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_backoff_refuses_nonsense_bounds(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(base=base, cap=cap)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("0", 0.0, id="zero-seconds"),
        pytest.param("120", 120.0, id="delay-seconds"),
        pytest.param(" 7 ", 7.0, id="padded"),
        pytest.param("1.5", 1.5, id="decimal-seconds-tolerated"),
        pytest.param("-3", None, id="negative-refused"),
        pytest.param("nan", None, id="nan-refused"),
        pytest.param("Sun, 01 Nov 2026 12:00:30 GMT", 30.0, id="http-date-future"),
        pytest.param("Sun, 01 Nov 2026 11:00:00 GMT", 0.0, id="http-date-past-is-now"),
        pytest.param("Sun, 01 Nov 2026 12:01:00 -0000", 60.0, id="http-date-minus-zero"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("\u00b2", None, id="unicode-digit-that-is-not-a-number"),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds
