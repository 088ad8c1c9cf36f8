"""Pure: what an EventQuery means, and the cursor. No app, no loop."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_fakes import make_event, sample_rows
from hypothesis import given
from hypothesis import strategies as st

from irisd.api.params import ParamError, decode_cursor, encode_cursor, parse_event_params
from irisd.api.services import CodePattern, EventQuery, EventRow, select_rows
from irisd.core.model import Severity

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pattern", "code", "hit"),
    [
        ("lock.table_full", "lock.table_full", True),
        ("lock.table_full", "lock.table_full_x", False),
        ("lock.*", "lock.table_full", True),
        ("lock.*", "lock", False),
        ("lock.*", "locks.table_full", False),
        ("journal.error.*", "journal.error.disk", True),
    ],
    ids=str,
)
def test_code_patterns(pattern: str, code: str, hit: bool) -> None:
    assert CodePattern.parse(pattern).matches(code) is hit


def test_an_empty_query_matches_everything_including_no_timestamp() -> None:
    event = make_event(1, "wij.recovery", Severity.WARNING, None)
    assert EventQuery().matches(event)
    assert not EventQuery(since=0.0).matches(event)


def test_severity_filters_combine() -> None:
    query = EventQuery(min_severity=Severity.WARNING, severities=frozenset({Severity.INFO}))
    assert not any(query.matches(row.event) for row in sample_rows())


def test_select_rows_pages_by_seq_whatever_the_input_order() -> None:
    rows = list(reversed(sample_rows()))
    page = select_rows(rows, EventQuery(limit=3, after=8))
    assert [row.seq for row in page] == [7, 6, 5]


def test_select_rows_applies_filters_before_the_limit() -> None:
    page = select_rows(sample_rows(), EventQuery(codes=(CodePattern("lock.", True),), limit=2))
    assert [row.seq for row in page] == [7, 4]


def test_select_rows_on_nothing() -> None:
    assert (
        select_rows([EventRow(1, make_event(1, "a.b", Severity.INFO, 1))], EventQuery(after=1))
        == []
    )


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_cursor_round_trips(seq: int) -> None:
    assert decode_cursor(encode_cursor(seq)) == seq


@pytest.mark.parametrize(
    "text", ["", "abc", encode_cursor(5) + "!", "c2VxOi0x", "c2VxOg", encode_cursor(2**63)]
)
def test_foreign_cursors_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor(text)


@pytest.mark.parametrize(
    ("text", "seconds_before_now"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("0m", 0)],
)
def test_relative_times(text: str, seconds_before_now: int) -> None:
    params = parse_event_params([("since", text)], now=NOW)
    assert params.to_query().since == NOW.timestamp() - seconds_before_now


def test_query_asks_for_extra_rows_only_when_told() -> None:
    params = parse_event_params([("limit", "7")], now=NOW)
    assert params.to_query().limit == 7
    assert params.to_query(extra=1).limit == 8


def test_param_error_names_field_and_reason() -> None:
    with pytest.raises(ParamError) as caught:
        parse_event_params([("code", "lock table")], now=NOW)
    assert (caught.value.field, caught.value.reason) == (
        "code",
        "neither a code (lock.table_full) nor a prefix (lock.*)",
    )
