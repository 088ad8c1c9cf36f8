"""`iso` renders POSIX seconds exactly as `datetime.isoformat` does, though it caches and rounds
by itself: half-even to the microsecond, then cut to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from irisd.core.model import iso


def reference(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@given(st.floats(min_value=-2e9, max_value=4e9, allow_nan=False))
def test_iso_equals_datetime_isoformat(ts: float) -> None:
    assert iso(ts) == reference(ts)


@given(st.integers(min_value=0, max_value=2**32), st.sampled_from([0.9999995, 0.0000005, 0.9995]))
def test_iso_carries_a_rounded_fraction_into_the_next_second(second: int, fraction: float) -> None:
    assert iso(second + fraction) == reference(second + fraction)


def test_iso_of_none_is_none() -> None:
    assert iso(None) is None
