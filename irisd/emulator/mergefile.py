"""IRIS's configuration merge (`iris merge INSTANCE FILE`), decided without I/O.

A merge file is a partial CPF plus an optional `[Actions]` section. Its parameters are written to
iris.cpf; those IRIS activates without a restart take effect at once, the others are recorded
and wait for the next start (OPERATIONS §2.3). `[Actions]` lines (`Operation:Prop=v,Prop=v`) are
operations, never copied into iris.cpf; the emulator carries out `ModifyDatabase` /
`ModifyDatabaseFile` with `MaxSize`, and reports the others as not supported.
"""

from __future__ import annotations

from dataclasses import dataclass

from irisd.core import cpf
from irisd.core.cpf import Change, CpfDocument, LineKind
from irisd.emulator.params import Problem, is_dynamic, validate


@dataclass(frozen=True, slots=True)
class Action:
    operation: str
    props: tuple[tuple[str, str], ...]

    def prop(self, name: str) -> str | None:
        return next((v for k, v in self.props if k == name), None)


@dataclass(frozen=True, slots=True)
class MergePlan:
    document: CpfDocument  # the new iris.cpf
    active: CpfDocument  # the running configuration after the dynamic changes
    applied: tuple[Change, ...]  # active at once
    pending: tuple[Change, ...]  # recorded for the next start
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class MergeRefused:
    problems: tuple[Problem, ...]


def parse_actions(patch: CpfDocument) -> tuple[Action, ...]:
    out: list[Action] = []
    for line in patch.lines:
        if line.section != "Actions" or line.kind is not LineKind.PARAM:
            continue
        # An action line is "Operation:Prop=v,Prop=v"; the CPF parser split it at the first "=".
        operation, _, first = (line.raw.strip()).partition(":")
        props = tuple(
            (k.strip(), v.strip())
            for k, _, v in (part.partition("=") for part in first.split(","))
            if k.strip()
        )
        out.append(Action(operation.strip(), props))
    return tuple(out)


def plan_merge(
    on_disk: CpfDocument,
    active: CpfDocument,
    patch: CpfDocument,
    *,
    known: frozenset[tuple[str, str]],
) -> MergePlan | MergeRefused:
    """What merging `patch` does to the file on disk and to the running configuration."""
    merged, changes = cpf.merge(on_disk, patch)
    problems = validate(merged, known=known)
    if problems:
        return MergeRefused(problems)
    applied = tuple(c for c in changes if is_dynamic(c.section, c.name))
    pending = tuple(c for c in changes if not is_dynamic(c.section, c.name))
    for change in applied:
        active = cpf.set_value(active, change.section, change.name, change.new)
    return MergePlan(merged, active, applied, pending, parse_actions(patch))
