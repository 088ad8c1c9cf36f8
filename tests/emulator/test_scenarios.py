"""Scenarios played offline: every line parses and classifies to the promised code with irisd's
own pipeline, each scenario's fix resolves it, its wrong fix does not, and play is deterministic."""

from __future__ import annotations

from datetime import datetime

import pytest

from irisd.core.model import LogEntry
from irisd.core.pipeline import classify_text
from irisd.emulator import offline, scenarios
from irisd.emulator.logfmt import HEADER
from irisd.rules import default_classifier

ANCHOR = datetime(2025, 3, 1, 9, 0, 0)
NAMES = scenarios.names()
FAILING = [n for n in NAMES if n != "normal_load"]


def _play(name: str, seed: int = 7, ticks: int = 30) -> offline.Play:
    play = offline.new_play(name, seed=seed, anchor=ANCHOR)
    offline.start(play)
    list(offline.run_ticks(play, ticks))
    return play


@pytest.mark.parametrize("name", NAMES)
def test_every_line_parses_and_classifies_to_the_promised_code(name: str) -> None:
    play = _play(name)
    offline.apply(play, play.scenario.fix)
    list(offline.run_ticks(play, 5))
    text = offline.render_text(play.entries)
    classified = classify_text(text, classifier=default_classifier())
    assert len(classified) == len(play.entries)
    for stamped, got in zip(play.entries, classified, strict=True):
        assert isinstance(got.entry, LogEntry), got.entry
        if stamped.line.code:
            assert got.classification.code == stamped.line.code, stamped.line.text


@pytest.mark.parametrize("name", NAMES)
def test_every_header_matches_the_facts_regex(name: str) -> None:
    for line in offline.render_text(_play(name).entries).splitlines():
        if line[:1].isdigit():
            assert HEADER.match(line), line


@pytest.mark.parametrize("name", FAILING)
def test_scenario_produces_its_root_cause_code(name: str) -> None:
    play = _play(name)
    codes = {s.line.code for s in play.entries}
    assert play.scenario.code in codes
    assert all(tick.failing for _, tick in play.ticks[-5:])


@pytest.mark.parametrize("name", FAILING)
def test_the_fix_resolves_the_scenario(name: str) -> None:
    play = _play(name)
    offline.apply(play, play.scenario.fix)
    after = list(offline.run_ticks(play, 12))
    assert not any(tick.failing for tick in after[1:])
    late = [s for s in play.entries if s.at > play.ticks[-10][0]]
    assert play.scenario.code not in {s.line.code for s in late}


@pytest.mark.parametrize("name", FAILING)
def test_the_wrong_fix_does_not(name: str) -> None:
    play = _play(name)
    offline.apply(play, play.scenario.wrong_fix)
    after = list(offline.run_ticks(play, 12))
    assert all(tick.failing for tick in after[1:])


def test_gmheap_needs_a_restart_to_take_effect() -> None:
    play = _play("gmheap_exhausted")
    offline.apply(play, scenarios.SCENARIOS["gmheap_exhausted"].wrong_fix)  # merge, no restart
    assert play.doc.get("config", "gmheap") == "1048576"
    assert all(t.failing for t in offline.run_ticks(play, 5))
    offline.restart(play)
    assert not any(t.failing for t in offline.run_ticks(play, 5))


def test_play_is_deterministic_for_a_seed() -> None:
    one = offline.render_text(_play("process_error_storm", seed=3).entries)
    two = offline.render_text(_play("process_error_storm", seed=3).entries)
    other = offline.render_text(_play("process_error_storm", seed=4).entries)
    assert one == two
    assert one != other
