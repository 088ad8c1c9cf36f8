"""Lossless CPF (`iris.cpf`) documents: parse, look up, edit, merge, render.

Theory of operation. A document is the tuple of its physical lines, each tagged with its kind
(blank, section heading, parameter, comment, other) and carrying its own line ending. Nothing is
normalised, so `render(parse(text)) == text` for every input: CRLF and LF (even mixed), trailing
spaces, comments, a missing final newline all survive. Edits replace or insert whole lines and
never touch the others; an inserted line takes the document's dominant line ending.

Invariants:
- Lookups are by exact `(section, name)`: IRIS writes names case-exact (`gmheap`,
  `MaxConsoleLogSize`) and the section `[config]` is lower case while the others are Title-case.
- A value is the text after the *first* `=` (values hold `=`, `,`, `^` and spaces), stripped of
  surrounding spaces and of a trailing ` #; comment` or ` // comment`, which IRIS keeps apart.
- Duplicates are values, not errors: `duplicates()` lists them; IRIS refuses to start on one
  (`Duplicate line detected, LINE:'memlock=0' at line 2070`), so editing never creates one:
  `set_value` rewrites the first occurrence and removes none.
- Comments: whole lines starting `;`, `#` or `//`, and `/* ... */` blocks (CPF reference 2025.3).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from enum import StrEnum

_TRAILING_COMMENT = re.compile(r"\s+(#;|//)")


class LineKind(StrEnum):
    BLANK = "blank"
    SECTION = "section"
    PARAM = "param"
    COMMENT = "comment"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class CpfLine:
    """One physical line. `raw` excludes the line ending, `eol` is `"\\r\\n"`, `"\\n"` or `""`."""

    raw: str
    eol: str
    kind: LineKind
    section: str | None = None
    name: str | None = None
    value: str | None = None
    comment: str = ""

    def is_param(self, section: str, name: str) -> bool:
        return self.kind is LineKind.PARAM and self.section == section and self.name == name


@dataclass(frozen=True, slots=True)
class Change:
    """One parameter whose value a merge or edit changed. `old` is None for a new parameter."""

    section: str
    name: str
    old: str | None
    new: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A parameter written twice in one section; `line` is the 1-based number of the repeat."""

    section: str
    name: str
    line: int
    raw: str


@dataclass(frozen=True, slots=True)
class CpfDocument:
    lines: tuple[CpfLine, ...]

    def get(self, section: str, name: str) -> str | None:
        """The value of the first `name` in `section`, or None when absent."""
        for line in self.lines:
            if line.is_param(section, name):
                return line.value
        return None

    def sections(self) -> tuple[str, ...]:
        return tuple(ln.section or "" for ln in self.lines if ln.kind is LineKind.SECTION)

    def params(self, section: str) -> tuple[tuple[str, str], ...]:
        """Every `(name, value)` of `section`, in file order, duplicates included."""
        return tuple(
            (ln.name or "", ln.value or "")
            for ln in self.lines
            if ln.kind is LineKind.PARAM and ln.section == section
        )

    def section_line(self, section: str) -> int | None:
        for number, line in enumerate(self.lines, start=1):
            if line.kind is LineKind.SECTION and line.section == section:
                return number
        return None

    @property
    def newline(self) -> str:
        """The dominant line ending; LF for an empty document."""
        counts = Counter(line.eol for line in self.lines if line.eol)
        return counts.most_common(1)[0][0] if counts else "\n"


def parse(text: str) -> CpfDocument:
    """Split `text` into tagged lines. Never fails: odd lines are kind OTHER for a validator."""
    lines: list[CpfLine] = []
    section: str | None = None
    in_block = False
    for raw, eol in _physical_lines(text):
        line, section, in_block = _classify(raw, eol, section, in_block)
        lines.append(line)
    return CpfDocument(tuple(lines))


def render(doc: CpfDocument) -> str:
    return "".join(line.raw + line.eol for line in doc.lines)


def _physical_lines(text: str) -> list[tuple[str, str]]:
    pieces = text.split("\n")
    out: list[tuple[str, str]] = []
    for piece in pieces[:-1]:
        if piece.endswith("\r"):
            out.append((piece[:-1], "\r\n"))
        else:
            out.append((piece, "\n"))
    if pieces[-1]:
        out.append((pieces[-1], ""))
    return out


def _classify(
    raw: str, eol: str, section: str | None, in_block: bool
) -> tuple[CpfLine, str | None, bool]:
    stripped = raw.strip()
    if in_block:
        return CpfLine(raw, eol, LineKind.COMMENT, section), section, "*/" not in stripped
    if not stripped:
        return CpfLine(raw, eol, LineKind.BLANK, section), section, False
    if stripped.startswith("/*"):
        return CpfLine(raw, eol, LineKind.COMMENT, section), section, "*/" not in stripped[2:]
    if stripped.startswith((";", "#", "//")):
        return CpfLine(raw, eol, LineKind.COMMENT, section), section, False
    if stripped.startswith("[") and stripped.endswith("]"):
        name = stripped[1:-1]
        return CpfLine(raw, eol, LineKind.SECTION, name), name, False
    if "=" in stripped:
        return _param_line(raw, eol, section), section, False
    return CpfLine(raw, eol, LineKind.OTHER, section), section, False


def _param_line(raw: str, eol: str, section: str | None) -> CpfLine:
    name, _, rest = raw.strip().partition("=")
    comment = ""
    found = _TRAILING_COMMENT.search(rest)
    if found:
        rest, comment = rest[: found.start()], rest[found.start() :]
    return CpfLine(raw, eol, LineKind.PARAM, section, name.strip(), rest.strip(), comment)


def duplicates(doc: CpfDocument) -> tuple[Duplicate, ...]:
    """Repeated `(section, name)` pairs, in file order of the repeat."""
    seen: set[tuple[str | None, str | None]] = set()
    out: list[Duplicate] = []
    for number, line in enumerate(doc.lines, start=1):
        if line.kind is not LineKind.PARAM:
            continue
        key = (line.section, line.name)
        if key in seen:
            out.append(Duplicate(line.section or "", line.name or "", number, line.raw.strip()))
        seen.add(key)
    return tuple(out)


def set_value(doc: CpfDocument, section: str, name: str, value: str) -> CpfDocument:
    """Set `name` in `section` to `value`: rewrite the first occurrence in place, or add it.

    A new parameter goes after the last parameter line of its section; a new section is appended
    at the end, separated by a blank line as IRIS writes them.
    """
    for index, line in enumerate(doc.lines):
        if line.is_param(section, name):
            indent = line.raw[: len(line.raw) - len(line.raw.lstrip())]
            raw = f"{indent}{name}={value}{line.comment}"
            updated = replace(line, raw=raw, value=value)
            return CpfDocument((*doc.lines[:index], updated, *doc.lines[index + 1 :]))
    return _insert(doc, section, name, value)


def _insert(doc: CpfDocument, section: str, name: str, value: str) -> CpfDocument:
    nl = doc.newline
    new = CpfLine(f"{name}={value}", nl, LineKind.PARAM, section, name, value)
    last = _last_line_of_section(doc, section)
    if last is None:
        lines = list(doc.lines)
        if lines and not lines[-1].eol:
            lines[-1] = replace(lines[-1], eol=nl)
        if lines and lines[-1].kind is not LineKind.BLANK:
            lines.append(CpfLine("", nl, LineKind.BLANK, lines[-1].section))
        lines.append(CpfLine(f"[{section}]", nl, LineKind.SECTION, section))
        lines.append(new)
        return CpfDocument(tuple(lines))
    before = list(doc.lines[: last + 1])
    if not before[-1].eol:
        before[-1] = replace(before[-1], eol=nl)
        new = replace(new, eol="")
    return CpfDocument((*before, new, *doc.lines[last + 1 :]))


def _last_line_of_section(doc: CpfDocument, section: str) -> int | None:
    last: int | None = None
    for index, line in enumerate(doc.lines):
        if line.section != section or line.kind is LineKind.BLANK:
            continue
        if line.kind is LineKind.SECTION or line.kind is LineKind.PARAM:
            last = index
    return last


def remove(doc: CpfDocument, section: str, name: str) -> CpfDocument:
    """Drop every occurrence of `name` in `section` (a no-op when absent)."""
    kept = tuple(line for line in doc.lines if not line.is_param(section, name))
    return CpfDocument(kept)


def merge(
    doc: CpfDocument, patch: CpfDocument, *, skip: frozenset[str] = frozenset({"Actions"})
) -> tuple[CpfDocument, tuple[Change, ...]]:
    """Apply every parameter of `patch` (a partial CPF, IRIS's merge file) to `doc`.

    Sections in `skip` are not copied: `[Actions]` describes operations and must never land in
    `iris.cpf` (startup fails when it is there). Unchanged values produce no `Change`.
    """
    changes: list[Change] = []
    for line in patch.lines:
        if line.kind is not LineKind.PARAM or line.section is None or line.section in skip:
            continue
        name, value = line.name or "", line.value or ""
        old = doc.get(line.section, name)
        if old == value:
            continue
        doc = set_value(doc, line.section, name, value)
        changes.append(Change(line.section, name, old, value))
    return doc, tuple(changes)
