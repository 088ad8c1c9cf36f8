"""Incident bundles (`irisd bundle`): one scenario played offline on a simulated clock and laid out
as the files an operator collects from an IRIS host during an incident, with the answer key
beside them. Pure: `build(spec)` returns the artifacts as bytes; `bundle_write` puts them on disk.

Theory of operation. The play is offline.py's: IRIS's start-up sequence, a healthy minute
(`normal_load` ticks), then `TICKS` ticks of the armed scenario, all with background noise and
no remediation. Each entry remembers where it came from (start-up, scenario, noise).
The incident is every entry that is not noise and carries the scenario's root-cause code or one
of its symptom codes; its primary entry is the first root-cause entry of severity 2 or more (the
first IRIS copies to alerts.log), else the first root-cause entry. A scenario without symptoms
(`normal_load`) is a negative control: no incident is expected. A variant then reshapes the
play (bundle_variants). The messages files are rendered, byte offsets counted as they are, and
re-read with irisd's own parser: every entry must parse at the offset counted and classify to the
code the scenario promised, or building fails, so a bundle never ships a wrong answer key.
Everything derives from the seed and the anchor through string-seeded generators and JSON with
sorted keys: the bytes do not depend on the process, its hash seed or the wall clock.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from irisd import __version__
from irisd.core import cpf
from irisd.core.model import LogEntry
from irisd.core.pipeline import classify_text
from irisd.emulator import bundle_metrics, bundle_truth, offline, scenarios
from irisd.emulator.bundle_truth import FORMAT, Ref
from irisd.emulator.bundle_variants import Entry, Focus, Origin, Shape, old_name, shape
from irisd.emulator.logfmt import is_alert, render
from irisd.emulator.model import Allocation, settings_from
from irisd.errors import EmulatorError
from irisd.rules import default_classifier

LEAD_IN = 12  # a healthy minute before the scenario is armed, so onset shows in every source
TICKS = 60  # then five simulated minutes of the scenario, at its 5-second tick
DEFAULT_THRESHOLD = 0.70


@dataclass(frozen=True, slots=True)
class Spec:
    scenario: str
    seed: int
    anchor: datetime  # timezone-aware; the time of the first entry
    threshold: float = DEFAULT_THRESHOLD
    variant: str | None = None

    @property
    def name(self) -> str:
        return f"{self.scenario}-{self.variant}" if self.variant else self.scenario


@dataclass(frozen=True, slots=True)
class Bundle:
    name: str
    artifacts: Mapping[str, bytes]  # file name → content, sorted by name, manifest.json included


def anchor_text(anchor: datetime) -> str:
    at = anchor.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def inapplicable(spec: Spec) -> str | None:
    """Why this bundle cannot be built, or None. A retry storm needs an operation that keeps
    failing while the instance runs: not a healthy instance, not a failure confined to start-up."""
    if spec.variant != "retry-storm":
        return None
    scenario = scenarios.SCENARIOS[spec.scenario]
    if not scenario.symptoms:
        return f"{spec.scenario} has no failing operation to repeat"
    if not focus(_play(spec)[1], scenario).recurring:
        return f"{spec.scenario} fails only at start-up; nothing repeats"
    return None


def build(spec: Spec) -> Bundle:
    scenario = scenarios.SCENARIOS[spec.scenario]
    play, entries = _play(spec)
    times = bundle_metrics.scrape_times(play.ticks[0][0], play.ticks[-1][0])
    rng = random.Random(f"bundle:{spec.seed}:{spec.scenario}:{spec.variant}")  # noqa: S311 - seeded simulation
    where = focus(entries, scenario)
    if spec.variant == "retry-storm" and not where.recurring:
        raise EmulatorError(f"bundle {spec.name}: no operation keeps failing to repeat")
    shaped = shape(spec.variant, entries, where, rng, times)
    files = _split(shaped)
    refs = [ref for name, part in files for ref in _refs(name, part)]
    texts = {name: "".join(render(e.line, e.at) for e in part) for name, part in files}
    for name, part in files:
        _verify(name, texts[name], part, [r for r in refs if r.file == name])
    truth = bundle_truth.ground_truth(scenario, play, shaped, focus(shaped.entries, scenario),
                                      refs, variant=spec.variant, threshold=spec.threshold)  # fmt: skip
    artifacts = {name: text.encode() for name, text in texts.items()}
    artifacts["alerts.log"] = _alerts(shaped).encode()
    artifacts["metrics.prom"] = _metrics(play, shaped, times).encode()
    artifacts["host.json"] = _json(_host(play, scenario))
    artifacts["iris.cpf"] = cpf.render(play.doc).encode()
    artifacts["ground_truth.json"] = _json(truth)
    artifacts["manifest.json"] = _json(manifest(spec, artifacts))
    return Bundle(spec.name, dict(sorted(artifacts.items())))


def _play(spec: Spec) -> tuple[offline.Play, list[Entry]]:
    local = spec.anchor.astimezone(UTC).replace(tzinfo=None)  # the emulated host runs in UTC
    play = offline.new_play(spec.scenario, seed=spec.seed, anchor=local)
    offline.start(play)
    started = len(play.entries)
    armed, play.scenario = play.scenario, scenarios.SCENARIOS["normal_load"]
    noise = _ticks(play, LEAD_IN, first=0)
    play.scenario, play.elapsed = armed, 0.0  # armed now: its clock starts here
    noise |= _ticks(play, TICKS, first=LEAD_IN)
    return play, [
        Entry(s.at, s.line, _origin(n, started, noise)) for n, s in enumerate(play.entries)
    ]


def _origin(n: int, started: int, noise: set[int]) -> Origin:
    return Origin.NOISE if n in noise else Origin.STARTUP if n < started else Origin.SCENARIO


def _ticks(play: offline.Play, count: int, *, first: int) -> set[int]:
    """Play ticks; return the indices of the entries that were background noise."""
    noise: set[int] = set()
    start = len(play.entries)
    for tick in offline.run_ticks(play, count, first=first):
        noise.update(range(start, start + tick.noise))  # noise comes first in a tick's lines
        start = len(play.entries)
    return noise


def focus(entries: Sequence[Entry], scenario: scenarios.Scenario) -> Focus:
    if not scenario.symptoms:
        return Focus()
    codes = {scenario.code, *scenario.symptoms}
    members = tuple(
        n for n, e in enumerate(entries) if e.origin is not Origin.NOISE and e.line.code in codes
    )
    roots = [n for n in members if entries[n].line.code == scenario.code]
    if not roots:
        raise EmulatorError(f"scenario {scenario.name}: the play shows no {scenario.code} entry")
    failing = tuple(n for n in roots if entries[n].line.severity >= 2)
    recurring = tuple(n for n in failing if entries[n].origin is Origin.SCENARIO)
    return Focus(members, failing, failing[0] if failing else roots[0], recurring)


def _split(shaped: Shape) -> list[tuple[str, Sequence[Entry]]]:
    entries, roll = shaped.entries, shaped.roll_at
    if roll is None:
        return [("messages.log", entries)]
    return [(old_name(entries, roll), entries[:roll]), ("messages.log", entries[roll:])]


def _refs(name: str, entries: Sequence[Entry]) -> list[Ref]:
    refs: list[Ref] = []
    offset, line = 0, 1
    for entry in entries:
        data = render(entry.line, entry.at).encode()
        refs.append(Ref(name, offset, line, entry.at))
        offset += len(data)
        line += data.count(b"\n")
    return refs


def _verify(name: str, text: str, entries: Sequence[Entry], refs: Sequence[Ref]) -> None:
    """Re-read the file with irisd's parser: the answer key must match what irisd sees."""
    got = classify_text(text, classifier=default_classifier())
    if len(got) != len(entries):
        raise EmulatorError(f"{name}: {len(got)} entries parsed, {len(entries)} written")
    for entry, ref, (parsed, verdict) in zip(entries, refs, got, strict=True):
        if not isinstance(parsed, LogEntry) or parsed.offset != ref.offset:
            raise EmulatorError(f"{name}: the entry at offset {ref.offset} does not parse there")
        if entry.line.code and verdict.code != entry.line.code:
            raise EmulatorError(f"{name}: the entry at offset {ref.offset} classifies as "
                                f"{verdict.code}, not {entry.line.code}")  # fmt: skip


def _alerts(shaped: Shape) -> str:
    """Log Monitor's copy of every severity 2+ entry, in the messages.log format."""
    return "".join(render(e.line, e.at + shaped.skew) for e in shaped.entries if is_alert(e.line))


def _metrics(play: offline.Play, shaped: Shape, times: Sequence[datetime]) -> str:
    settings = settings_from(play.active)
    where = bundle_metrics.Where(offline.INSTALL + "mgr/", settings.journal_dir,
                                 play.db_max.get("USER", 0))  # fmt: skip
    if shaped.gap is not None:
        start, until = shaped.gap
        times = [t for t in times if not start <= t < until]
    alert_times = [e.at for e in shaped.entries if is_alert(e.line)]
    series = bundle_metrics.scrapes(times, play.ticks, alert_times, where)
    return bundle_metrics.render(series, skew=shaped.skew)


def _host(play: offline.Play, scenario: scenarios.Scenario) -> dict[str, object]:
    settings = settings_from(play.active)
    alloc = play.allocation
    plan = alloc.plan if isinstance(alloc, Allocation) else None
    iris: dict[str, object] = {
        "instance": "IRIS",
        "install_dir": offline.INSTALL,
        "cpf_file": offline.INSTALL + "iris.cpf",
        "superserver_port": settings.superserver_port,
        "web_port": settings.web_port,
        "license_units": play.license_units,
        "shared_memory_mb": plan.total_mb if plan else None,
        "huge_pages": isinstance(alloc, Allocation) and alloc.huge_pages,
    }
    kernel = {k: v for k, v in scenario.host_setup if k != "vm.nr_hugepages"}
    return bundle_metrics.host_facts(play.host, kernel=kernel, iris=iris)


def manifest(spec: Spec, artifacts: Mapping[str, bytes]) -> dict[str, object]:
    return {
        "bundle_format": FORMAT,
        "scenario": spec.scenario,
        "variant": spec.variant,
        "seed": spec.seed,
        "anchor": anchor_text(spec.anchor),
        "generator": {"name": "irisd bundle", "version": __version__},
        "artifacts": [
            {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in sorted(artifacts.items())
        ],
        "volatile_fields": [],  # no field depends on when or where the bundle was built
    }


def _json(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
