"""Pure parsing of the `iris` control program's output: `iris qlist` and `iris list`.

`qlist` prints one caret-delimited line per instance with 13 fields in a fixed order (name,
directory, version, "status, since/last used …", CPF file, superserver port, web port, JDBC port,
state, product, mirror member type, mirror status, data directory). Old versions stop after the
eighth field when the instance is down; a missing state then means `ok`, as isclib assumes.
`list` prints a `Configuration 'NAME'` block per instance with `key: value` lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

QLIST_FIELDS = 13
_CONF_FILE = re.compile(
    r"^(?P<file>\S+)\s*\(SuperServer port = (?P<ss>\d+), WebServer = (?P<web>\d+)\)"
)
_CONFIGURATION = re.compile(r"^Configuration '(?P<name>[^']+)'\s*(?P<default>\(default\))?")


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """One instance as `iris qlist` describes it."""

    name: str
    directory: str
    version: str
    status: str  # "running", "down", "sign-on inhibited", …: field 4 before the comma
    status_detail: str  # "since Tue Jun 27 01:55:25 2023" or "last used …"
    cpf_file: str
    superserver_port: int | None
    web_port: int | None
    jdbc_port: int | None
    state: str  # "ok", "warn", "alert", "hung"
    product: str
    mirror_type: str
    mirror_status: str
    data_directory: str

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def healthy(self) -> bool:
        """What health checks in the wild test: running and state ok."""
        return self.running and self.state == "ok"


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line that is not qlist output; kept so the caller can say what it got."""

    line: str
    reason: str


@dataclass(frozen=True, slots=True)
class ListedInstance:
    """One `Configuration` block of `iris list`. `fields` keeps every key as printed."""

    name: str
    default: bool
    fields: tuple[tuple[str, str], ...]

    def field(self, key: str) -> str | None:
        return next((value for k, value in self.fields if k == key), None)

    @property
    def status(self) -> str:
        return (self.field("status") or "").partition(",")[0].strip()

    @property
    def cpf_file(self) -> str | None:
        found = _CONF_FILE.match(self.field("conf file") or "")
        return found.group("file") if found else None

    @property
    def ports(self) -> tuple[int, int] | None:
        found = _CONF_FILE.match(self.field("conf file") or "")
        return (int(found.group("ss")), int(found.group("web"))) if found else None


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_qlist_line(line: str) -> InstanceStatus | Malformed:
    fields = line.rstrip("\r\n").split("^")
    if len(fields) < 8:
        return Malformed(line, f"expected at least 8 caret fields, got {len(fields)}")
    if len(fields) > QLIST_FIELDS:
        return Malformed(line, f"expected at most {QLIST_FIELDS} caret fields, got {len(fields)}")
    fields += [""] * (QLIST_FIELDS - len(fields))
    status, _, detail = fields[3].partition(",")
    return InstanceStatus(
        name=fields[0],
        directory=fields[1],
        version=fields[2],
        status=status.strip(),
        status_detail=detail.strip(),
        cpf_file=fields[4],
        superserver_port=_port(fields[5]),
        web_port=_port(fields[6]),
        jdbc_port=_port(fields[7]),
        state=fields[8] or "ok",
        product=fields[9],
        mirror_type=fields[10],
        mirror_status=fields[11],
        data_directory=fields[12],
    )


def parse_qlist(text: str) -> tuple[InstanceStatus | Malformed, ...]:
    """Every non-blank line of `iris qlist` output, parsed."""
    return tuple(parse_qlist_line(line) for line in text.splitlines() if line.strip())


def parse_list(text: str) -> tuple[ListedInstance, ...]:
    """The `Configuration` blocks of `iris list`; lines before the first block are ignored."""
    out: list[ListedInstance] = []
    current: tuple[str, bool] | None = None
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        head = _CONFIGURATION.match(line.strip())
        if head:
            if current:
                out.append(ListedInstance(current[0], current[1], tuple(fields)))
            current, fields = (head.group("name"), bool(head.group("default"))), []
        elif current and ":" in line:
            key, _, value = line.partition(":")
            fields.append((key.strip(), value.strip()))
    if current:
        out.append(ListedInstance(current[0], current[1], tuple(fields)))
    return tuple(out)
