"""IRIS's configuration merge (`iris merge INSTANCE FILE`), decided without I/O.

A merge file is a partial CPF plus an optional `[Actions]` section. Its parameters are written to
iris.cpf; those IRIS activates without a restart take effect at once, the others are recorded
and wait for the next start (OPERATIONS §2.3). `[Actions]` lines (`Operation:Prop=v,Prop=v`) are
operations, never copied into iris.cpf; the emulator carries out `ModifyDatabase` /
`ModifyDatabaseFile` (a database's `MaxSize` in MB, 0 for none) and refuses the merge, changing
nothing, on any other operation or on a malformed one, naming the line and the property.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def parse_action(text: str) -> Action:
    """One `Operation:Prop=v,Prop=v` line."""
    operation, _, rest = text.strip().partition(":")
    props = tuple(
        (k.strip(), v.strip())
        for k, _, v in (part.partition("=") for part in rest.split(","))
        if k.strip()
    )
    return Action(operation.strip(), props)


def parse_actions(patch: CpfDocument) -> tuple[tuple[int, Action], ...]:
    """The `[Actions]` lines of a merge file, with their line numbers. The CPF parser split each
    at its first "=", so the raw line is parsed again."""
    return tuple(
        (number, parse_action(line.raw))
        for number, line in enumerate(patch.lines, start=1)
        if line.section == "Actions" and line.kind in (LineKind.PARAM, LineKind.OTHER)
    )


_DATABASE_OPS = ("ModifyDatabase", "ModifyDatabaseFile")


def _action_problems(actions: Iterable[tuple[int, Action]]) -> Iterable[Problem]:
    # Wording ours: the emulator's own limits, in the shape of IRIS's "… at line N".
    for number, action in actions:
        where = f"[Actions] {action.operation} at line {number}"
        size = action.prop("MaxSize")
        if action.operation not in _DATABASE_OPS:
            yield Problem(number, f"{where}: not supported by the emulated instance "
                                  f"(it carries out {' and '.join(_DATABASE_OPS)})")  # fmt: skip
        elif not action.prop("Name"):
            yield Problem(number, f"{where}: Name is required")
        elif size is not None and not size.isdigit():
            yield Problem(number, f"{where}: MaxSize {size!r} is not a whole number of MB")


def database_limits(actions: Iterable[Action], current: Mapping[str, int]) -> dict[str, int]:
    """Database maximum sizes (MB by upper-case name, 0 for none) after `actions`, which
    `plan_merge` has already checked."""
    limits = dict(current)
    for action in actions:
        size = action.prop("MaxSize")
        if action.operation in _DATABASE_OPS and size is not None:
            limits[(action.prop("Name") or "").upper()] = int(size)
    return limits


def plan_merge(
    on_disk: CpfDocument,
    active: CpfDocument,
    patch: CpfDocument,
    *,
    known: frozenset[tuple[str, str]],
) -> MergePlan | MergeRefused:
    """What merging `patch` does to the file on disk and to the running configuration."""
    merged, changes = cpf.merge(on_disk, patch)
    numbered = parse_actions(patch)
    problems = (*validate(merged, known=known), *_action_problems(numbered))
    if problems:
        return MergeRefused(problems)
    applied = tuple(c for c in changes if is_dynamic(c.section, c.name))
    pending = tuple(c for c in changes if not is_dynamic(c.section, c.name))
    for change in applied:
        active = cpf.set_value(active, change.section, change.name, change.new)
    return MergePlan(merged, active, applied, pending, tuple(a for _, a in numbered))
