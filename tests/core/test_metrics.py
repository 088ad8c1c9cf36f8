"""The metrics registry: values, invariants, and text exposition 0.0.4 that a real parser reads."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from irisd.core.metrics import (
    MetricsRegistry,
    escape_help,
    escape_label_value,
    format_value,
)


def _daemon_registry() -> MetricsRegistry:
    reg = MetricsRegistry()
    reg.counter("irisd_lines_total", "Lines read from messages.log.").inc(1200)
    reg.counter("irisd_bytes_total", "Bytes read from messages.log.").inc(98_304)
    events = reg.counter("irisd_events_total", "Events classified.", ("code", "severity"))
    events.labels(code="lock.table_full", severity="2").inc(3)
    events.labels(code="journal.switch", severity="0").inc()
    reg.gauge("irisd_tail_lag_bytes", "Bytes in the log not yet read.").set(512)
    return reg


def test_render_is_sorted_with_help_and_type() -> None:
    assert _daemon_registry().render() == (
        "# HELP irisd_bytes_total Bytes read from messages.log.\n"
        "# TYPE irisd_bytes_total counter\n"
        "irisd_bytes_total 98304\n"
        "# HELP irisd_events_total Events classified.\n"
        "# TYPE irisd_events_total counter\n"
        'irisd_events_total{code="journal.switch",severity="0"} 1\n'
        'irisd_events_total{code="lock.table_full",severity="2"} 3\n'
        "# HELP irisd_lines_total Lines read from messages.log.\n"
        "# TYPE irisd_lines_total counter\n"
        "irisd_lines_total 1200\n"
        "# HELP irisd_tail_lag_bytes Bytes in the log not yet read.\n"
        "# TYPE irisd_tail_lag_bytes gauge\n"
        "irisd_tail_lag_bytes 512\n"
    )


def test_render_parses_back_with_prometheus_parser() -> None:
    parsed = {f.name: f for f in text_string_to_metric_families(_daemon_registry().render())}
    # The parser strips a counter's _total suffix from the family name, not from the samples.
    events = parsed["irisd_events"]
    assert events.type == "counter"
    by_code = {s.labels["code"]: s.value for s in events.samples}
    assert by_code == {"journal.switch": 1.0, "lock.table_full": 3.0}
    assert parsed["irisd_tail_lag_bytes"].samples[0].value == 512.0


def test_unlabelled_family_shows_zero_before_any_increment() -> None:
    reg = MetricsRegistry()
    reg.counter("irisd_parse_failures_total", "Entries that did not parse.")
    assert reg.render().endswith("irisd_parse_failures_total 0\n")


def test_labelled_family_with_no_children_renders_only_its_header() -> None:
    reg = MetricsRegistry()
    reg.counter("irisd_events_total", "Events.", ("code",))
    assert reg.render() == "# HELP irisd_events_total Events.\n# TYPE irisd_events_total counter\n"


def test_render_is_byte_stable_across_calls() -> None:
    reg = _daemon_registry()
    assert reg.render() == reg.render()


def test_children_are_cached_so_callers_can_hold_them() -> None:
    family = MetricsRegistry().counter("x_total", "x", ("code",))
    child = family.labels(code="a")
    child.inc(2)
    family.labels(code="a").inc(3)
    assert child.value == 5
    assert family.value(code="a") == 5


def test_counter_refuses_to_decrease() -> None:
    counter = MetricsRegistry().counter("x_total", "x")
    with pytest.raises(ValueError, match="cannot decrease"):
        counter.inc(-1)
    with pytest.raises(TypeError, match="gauges"):
        counter.set(0)
    with pytest.raises(TypeError, match="gauges"):
        counter.dec()


def test_gauge_goes_up_down_and_is_set() -> None:
    gauge = MetricsRegistry().gauge("lag_bytes", "lag")
    gauge.inc(10)
    gauge.dec(4)
    assert gauge.value() == 6
    gauge.set(2.5)
    assert gauge.value() == 2.5


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        pytest.param("9lives", (), id="name-starts-with-digit"),
        pytest.param("has-dash", (), id="name-with-dash"),
        pytest.param("ok_total", ("bad-label",), id="label-with-dash"),
        pytest.param("ok_total", ("__reserved",), id="label-reserved-prefix"),
        pytest.param("ok_total", ("a", "a"), id="duplicate-label"),
    ],
)
def test_invalid_names_are_refused_at_registration(name: str, labels: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"invalid|duplicate"):
        MetricsRegistry().counter(name, "h", labels)


def test_registering_twice_returns_same_family_or_refuses_a_different_one() -> None:
    reg = MetricsRegistry()
    first = reg.counter("x_total", "x", ("code",))
    assert reg.counter("x_total", "x", ("code",)) is first
    with pytest.raises(ValueError, match="already registered"):
        reg.gauge("x_total", "x", ("code",))


def test_labels_must_match_the_family() -> None:
    family = MetricsRegistry().counter("x_total", "x", ("code", "severity"))
    with pytest.raises(ValueError, match="takes labels"):
        family.labels(code="a")
    with pytest.raises(ValueError, match=r"use \.labels"):
        family.inc()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(0.0, "0", id="zero"),
        pytest.param(3.0, "3", id="integral"),
        pytest.param(0.25, "0.25", id="fraction"),
        pytest.param(math.inf, "+Inf", id="inf"),
        pytest.param(-math.inf, "-Inf", id="minus-inf"),
        pytest.param(math.nan, "NaN", id="nan"),
        pytest.param(1e300, "1e+300", id="huge"),
    ],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


def test_escaping_of_help_and_label_values() -> None:
    assert escape_help('a\\b\n"c"') == 'a\\\\b\\n"c"'
    assert escape_label_value('a\\b\n"c"') == 'a\\\\b\\n\\"c\\"'


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))))
def test_any_label_value_round_trips_through_a_real_parser(value: str) -> None:
    reg = MetricsRegistry()
    reg.counter("x_total", "help with \\ and \n newline", ("code",)).labels(code=value).inc()
    (family,) = text_string_to_metric_families(reg.render())
    assert family.documentation == "help with \\ and \n newline"
    assert [s.labels["code"] for s in family.samples if s.name == "x_total"] == [value]
