"""ground_truth.json of an incident bundle: the answer a diagnosis of the bundle is scored
against. Pure.

Entries are named by file and byte offset (and 1-based line number), so a tool that reads the
messages files itself can match its own entries exactly. Remediation steps are machine-readable
and carry the value in force when the bundle was taken (`current`), the shape a remediation
command's steps take: CPF section/parameter/value, sysctl key/value, a restart, and the few steps
outside IRIS's configuration (a licence key, an [Actions] merge line, an external fix).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from irisd.emulator import bundle_metrics, offline, scenarios
from irisd.emulator.bundle_variants import Entry, Focus, Shape
from irisd.emulator.params import is_dynamic
from irisd.emulator.world import Remedy

FORMAT = 1  # the layout of a bundle; raised when a file or field changes meaning


@dataclass(frozen=True, slots=True)
class Ref:
    file: str
    offset: int  # bytes from the start of `file` to the entry's first byte
    line: int  # 1-based line number of the entry's header line
    at: datetime

    def as_json(self) -> dict[str, object]:
        return {"file": self.file, "offset": self.offset, "line": self.line}


def iso(at: datetime) -> str:
    """messages.log's clock (UTC) as ISO 8601, to the millisecond as the log shows it."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def ground_truth(
    scenario: scenarios.Scenario,
    play: offline.Play,
    shaped: Shape,
    focus: Focus,
    refs: Sequence[Ref],
    *,
    variant: str | None,
    threshold: float,
) -> dict[str, object]:
    entries = shaped.entries
    members = [{**refs[n].as_json(), "code": entries[n].line.code} for n in focus.members]
    primary = (
        None if focus.primary is None else _primary(entries[focus.primary], refs[focus.primary])
    )
    seen = {entries[n].line.code for n in focus.members}
    return {
        "bundle_format": FORMAT,
        "scenario": scenario.name,
        "variant": variant,
        "incident_expected": primary is not None,
        "root_cause": None if primary is None else {
            "code": scenario.code, "summary": scenario.summary, "explanation": scenario.root_cause,
        },
        "primary": primary,
        "symptom_codes": [c for c in scenario.symptoms if c in seen],
        "incidents": [] if primary is None else [{
            "root_cause_code": scenario.code, "primary": primary, "members": members,
            "first": iso(refs[focus.members[0]].at), "last": iso(refs[focus.members[-1]].at),
        }],
        "remediation": None if primary is None else remediation(scenario.fix, play),
        "not_a_remediation": None if primary is None else remediation(scenario.wrong_fix, play),
        "pass_threshold": threshold,
        "variant_details": variant_details(variant, shaped, refs),
    }  # fmt: skip


def _primary(entry: Entry, ref: Ref) -> dict[str, object]:
    return {**ref.as_json(), "time": iso(ref.at), "code": entry.line.code,
            "severity": entry.line.severity, "text": entry.line.text.split("\n", 1)[0]}  # fmt: skip


def remediation(remedy: Remedy, play: offline.Play) -> dict[str, object]:
    steps: list[dict[str, object]] = []
    for section, name, value in remedy.cpf:
        steps.append({"kind": "cpf", "section": section, "parameter": name, "value": value,
                      "current": play.doc.get(section, name),
                      "takes_effect": "at once" if is_dynamic(section, name) else "after restart"})  # fmt: skip
    for action in remedy.actions:
        steps.append({"kind": "merge_action", "section": "Actions", "action": action})
    for key, value in remedy.host:
        steps.append({"kind": "sysctl", "key": key, "value": value, "current": _sysctl(play, key)})
    if remedy.license_units is not None:
        steps.append({"kind": "license_key", "units": remedy.license_units,
                      "current": play.license_units})  # fmt: skip
    if remedy.external:
        steps.append({"kind": "external", "what": remedy.external})
    if remedy.restart or remedy.force:
        steps.append({"kind": "restart", "force": remedy.force})
    return {"description": remedy.description, "requires_restart": remedy.restart or remedy.force,
            "steps": steps}  # fmt: skip


def _sysctl(play: offline.Play, key: str) -> str | None:
    if key == "vm.nr_hugepages":
        return str(play.host.hugepages_total)
    return bundle_metrics.KERNEL_DEFAULTS.get(key)


def variant_details(
    variant: str | None, shaped: Shape, refs: Sequence[Ref]
) -> dict[str, object] | None:
    if variant == "clock-skew":
        offset = shaped.skew // timedelta(milliseconds=1)
        return {"name": variant, "sources": ["alerts.log", "metrics.prom"], "offset_ms": offset,
                "meaning": "a skewed source's timestamp = messages.log's time + offset_ms"}  # fmt: skip
    if variant == "partial-outage" and shaped.gap is not None:
        start, until = shaped.gap
        missing = (until - start) // bundle_metrics.SCRAPE_INTERVAL
        return {"name": variant, "source": "metrics.prom", "missing_from": iso(start),
                "missing_until": iso(until), "missing_scrapes": missing}  # fmt: skip
    if variant == "retry-storm":
        return {"name": variant, "storms": _storms(shaped.entries, refs)}
    if variant == "rotation" and shaped.roll_at is not None:
        old, new = refs[shaped.roll_at - 1], refs[shaped.roll_at]
        return {"name": variant, "old_file": old.file, "new_file": new.file,
                "rolled_at": iso(new.at), "last_in_old_file": old.as_json(),
                "first_in_new_file": new.as_json()}  # fmt: skip
    return None


def _storms(entries: Sequence[Entry], refs: Sequence[Ref]) -> list[dict[str, object]]:
    storms: list[dict[str, object]] = []
    copies: list[dict[str, object]] = []
    for n, entry in enumerate(entries):
        if entry.storm == "copy":
            copies.append(refs[n].as_json())
        elif entry.storm == "summary":
            first = n - len(copies) - 1
            storms.append({"first": refs[first].as_json(), "copies": copies,
                           "summary": refs[n].as_json(), "repeated": entry.folded,
                           "occurrences": 1 + len(copies) + entry.folded})  # fmt: skip
            copies = []
    return storms
