"""A small metrics registry: counters and gauges with labels, rendered as Prometheus text 0.0.4.

Theory of operation. A `MetricsRegistry` holds metric families by name. A family without labels
is its own single sample; a family with labels hands out one `Child` per tuple of label values
(`family.labels(code="lock.table_full", severity="2")`), cached, so the hot path is a dict lookup
done once by the caller and then `child.inc(n)`: one float addition. Values only ever change
through `inc`/`dec`/`set`; `render()` reads them and never mutates.

Invariants: names and label names are checked once, at registration; a counter never goes down
(`inc` with a negative amount is a broken invariant and raises); registering the same name twice
returns the existing family only if kind, help and label names agree. The registry is not locked:
it is updated and read from one thread, the daemon's event loop.

`render()` output is stable: families sorted by name, samples sorted by label values, so two
renders of the same state are byte-identical and diffs of scrapes are meaningful.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class Sample:
    """One line of exposition: a family's name, its label pairs and the current value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


class Child:
    """The value of one label combination. Counters refuse to go down."""

    __slots__ = ("_kind", "value")

    def __init__(self, kind: Kind) -> None:
        self._kind = kind
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0 and self._kind is Kind.COUNTER:
            raise ValueError(f"a counter cannot decrease (inc by {amount})")
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self._gauge_only("dec")
        self.value -= amount

    def set(self, value: float) -> None:
        self._gauge_only("set")
        self.value = float(value)

    def _gauge_only(self, what: str) -> None:
        if self._kind is Kind.COUNTER:
            raise TypeError(f"{what} is for gauges; counters only go up")


class Family:
    """A named metric. Without labels it behaves as its one child (`inc`, `dec`, `set`)."""

    __slots__ = ("_children", "_labelset", "_unlabelled", "help", "kind", "labelnames", "name")

    def __init__(self, name: str, help_text: str, kind: Kind, labelnames: tuple[str, ...]) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.labelnames = labelnames
        self._labelset = frozenset(labelnames)
        self._children: dict[tuple[str, ...], Child] = {}
        # An unlabelled family exposes 0 from the start, so a scrape shows it before any event.
        self._unlabelled = None if labelnames else self._child(())

    def labels(self, **values: str) -> Child:
        """The child for these label values (created at 0 on first use)."""
        if values.keys() != self._labelset:
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(values)}")
        return self._child(tuple([values[n] for n in self.labelnames]))

    def inc(self, amount: float = 1.0) -> None:
        self._only_child().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only_child().dec(amount)

    def set(self, value: float) -> None:
        self._only_child().set(value)

    def value(self, **values: str) -> float:
        """The current value (of the child named by `values`, for a labelled family)."""
        return self.labels(**values).value if self.labelnames else self._only_child().value

    def samples(self) -> Iterator[Sample]:
        for key in sorted(self._children):
            pairs = tuple(zip(self.labelnames, key, strict=True))
            yield Sample(self.name, pairs, self._children[key].value)

    def _child(self, key: tuple[str, ...]) -> Child:
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = Child(self.kind)
        return child

    def _only_child(self) -> Child:
        if self._unlabelled is None:
            raise ValueError(f"{self.name} has labels {self.labelnames}: use .labels(...)")
        return self._unlabelled


class MetricsRegistry:
    """Families by name; `render()` gives the exposition text."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}

    def counter(self, name: str, help_text: str, labelnames: tuple[str, ...] = ()) -> Family:
        return self._register(name, help_text, Kind.COUNTER, labelnames)

    def gauge(self, name: str, help_text: str, labelnames: tuple[str, ...] = ()) -> Family:
        return self._register(name, help_text, Kind.GAUGE, labelnames)

    def get(self, name: str) -> Family | None:
        return self._families.get(name)

    def families(self) -> list[Family]:
        return [self._families[name] for name in sorted(self._families)]

    def render(self) -> str:
        return "".join(render_family(family) for family in self.families())

    def _register(self, name: str, help_text: str, kind: Kind, labels: tuple[str, ...]) -> Family:
        existing = self._families.get(name)
        if existing is not None:
            if (existing.kind, existing.help, existing.labelnames) != (kind, help_text, labels):
                raise ValueError(f"{name} is already registered differently")
            return existing
        _check_names(name, labels)
        family = self._families[name] = Family(name, help_text, kind, labels)
        return family


def _check_names(name: str, labelnames: tuple[str, ...]) -> None:
    if not _NAME.match(name):
        raise ValueError(f"invalid metric name {name!r}")
    for label in labelnames:
        if not _LABEL.match(label) or label.startswith("__"):
            raise ValueError(f"invalid label name {label!r} for {name}")
    if len(set(labelnames)) != len(labelnames):
        raise ValueError(f"duplicate label names for {name}: {labelnames}")


def render_family(family: Family) -> str:
    head = f"# HELP {family.name} {escape_help(family.help)}\n# TYPE {family.name} {family.kind}\n"
    return head + "".join(render_sample(sample) for sample in family.samples())


def render_sample(sample: Sample) -> str:
    if not sample.labels:
        return f"{sample.name} {format_value(sample.value)}\n"
    pairs = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in sample.labels)
    return f"{sample.name}{{{pairs}}} {format_value(sample.value)}\n"


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """Integral values without a fraction (counts read as counts); the spelled-out specials."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)
