"""The emulated instance's reading of `iris.cpf`: which parameters exist, their ranges, which
apply at once and which wait for a restart, and the start-up validation IRIS performs.

Pure: a `CpfDocument` in, `Settings` or a tuple of `Problem`s out.

Restart rules. For `[config]` the class list PROPERTIESACTIVATENORESTART (CLS:Config/config, a
primary source, FACTS §3.3) is followed: bbsiz, console, LibPath, history, locksiz, MaxServers,
netjob, PythonPath, PythonRuntimeLibrary(Version), targwijsz, wijdir, zfheap, UUIDv1RandomMac apply
at once; every other `[config]` parameter waits for a restart. `[Journal]`, `[ECP]`, `[SQL]`,
`[ECPServers]` and `[Startup] MaxConsoleLogSize`/`ShutdownTimeout` apply at once (OPERATIONS
§1.4, §1.7, §1.8); the rest of `[Startup]`, `[Databases]` and the memory parameters need a restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from irisd.core.cpf import CpfDocument, LineKind

# Sections whose parameter names are free (database names, device ids, gateway names …).
FREE_SECTIONS = frozenset(
    {
        "Databases", "Namespaces", "ECPServers", "DeviceSubTypes", "Devices", "MagTapes",
        "Gateways", "LicenseServers", "WorkQueues", "SqlSysDatatypes", "SqlUserDatatypes",
        "Conversions", "Archives", "Mirrors", "Shadows", "ComPorts", "Debug",
    }
)  # fmt: skip
KNOWN_SECTIONS = FREE_SECTIONS | {
    "ConfigFile", "MirrorMember", "Journal", "Startup", "config", "Miscellaneous", "ECP",
    "Cluster", "Monitor", "IO", "SQL", "Telnet", "Logging",
}  # fmt: skip
REQUIRED_DATABASES = ("IRISSYS", "IRISLIB", "IRISTEMP", "IRISAUDIT", "IRISSECURITY")

DYNAMIC = frozenset(
    {("config", n) for n in (
        "bbsiz", "console", "LibPath", "history", "locksiz", "MaxServers", "netjob", "PythonPath",
        "PythonRuntimeLibrary", "PythonRuntimeLibraryVersion", "targwijsz", "wijdir", "zfheap",
        "UUIDv1RandomMac",
    )}
    | {("Startup", "MaxConsoleLogSize"), ("Startup", "ShutdownTimeout"), ("Startup", "SystemMode")}
)  # fmt: skip
DYNAMIC_SECTIONS = frozenset({"Journal", "ECP", "SQL", "ECPServers", "Miscellaneous", "Logging"})


@dataclass(frozen=True, slots=True)
class IntRange:
    low: int
    high: int
    zero_ok: bool = False  # 0 means "automatic" or "unlimited"
    minus_one_ok: bool = False

    def accepts(self, value: str) -> bool:
        try:
            number = int(value)
        except ValueError:
            return False
        if (number == 0 and self.zero_ok) or (number == -1 and self.minus_one_ok):
            return True
        return self.low <= number <= self.high


# Ranges from OPERATIONS §1.6-1.8 (CPF reference 2025.3) and FACTS §3.3-3.6.
RANGES: dict[tuple[str, str], IntRange] = {
    ("config", "gmheap"): IntRange(16384, 1_073_741_760, zero_ok=True),
    ("config", "locksiz"): IntRange(65536, 1_099_511_562_240, zero_ok=True),
    ("config", "bbsiz"): IntRange(256, 2_147_483_647, minus_one_ok=True),
    ("config", "jrnbufs"): IntRange(16, 1024),
    ("config", "errlog"): IntRange(10, 10000),
    ("config", "MaxServerConn"): IntRange(0, 254),
    ("config", "MaxServers"): IntRange(0, 254),
    ("config", "history"): IntRange(0, 1000),
    ("config", "ijcbuff"): IntRange(512, 8192),
    ("config", "ijcnum"): IntRange(0, 256),
    ("config", "nlstab"): IntRange(0, 64),
    ("config", "udevtabsiz"): IntRange(0, 65535),
    ("config", "memlock"): IntRange(0, 255, zero_ok=True),
    ("config", "targwijsz"): IntRange(0, 2**31, zero_ok=True),
    ("config", "routines"): IntRange(80, 1020, zero_ok=True),
    ("Startup", "DefaultPort"): IntRange(1, 65535),
    ("Startup", "WebServerPort"): IntRange(1, 65535),
    ("Startup", "MaxConsoleLogSize"): IntRange(1, 500),
    ("Startup", "ShutdownTimeout"): IntRange(120, 100000),
    ("Startup", "ErrorPurge"): IntRange(1, 1000),
    ("Startup", "JobServers"): IntRange(0, 2000),
    ("Startup", "WebServer"): IntRange(0, 1, zero_ok=True),
    ("Journal", "FileSizeLimit"): IntRange(0, 4079, zero_ok=True),
    ("Journal", "DaysBeforePurge"): IntRange(0, 100, zero_ok=True),
    ("Journal", "BackupsBeforePurge"): IntRange(0, 10, zero_ok=True),
    ("Journal", "FreezeOnError"): IntRange(0, 1, zero_ok=True),
    ("ECP", "ClientReconnectDuration"): IntRange(10, 65535),
    ("ECP", "ClientReconnectInterval"): IntRange(1, 60),
    ("ECP", "ServerTroubleDuration"): IntRange(20, 65535),
    ("SQL", "LockThreshold"): IntRange(1, 2**31),
    ("SQL", "LockTimeout"): IntRange(0, 32767, zero_ok=True),
}
# Parameters IRIS will not start without (a subset: the ones this emulator reads).
REQUIRED = (
    ("config", "globals"), ("config", "gmheap"), ("config", "locksiz"), ("config", "jrnbufs"),
    ("config", "routines"), ("config", "bbsiz"), ("config", "memlock"),
    ("Startup", "DefaultPort"), ("Startup", "WebServerPort"), ("Startup", "MaxConsoleLogSize"),
    ("Startup", "ShutdownTimeout"), ("Startup", "WebServer"),
    ("Journal", "CurrentDirectory"), ("Journal", "AlternateDirectory"),
    ("Journal", "DaysBeforePurge"), ("Journal", "FreezeOnError"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Problem:
    """One start-up validation failure, already worded as IRIS writes it (severity 3)."""

    line: int
    message: str


def is_dynamic(section: str, name: str) -> bool:
    return section in DYNAMIC_SECTIONS or (section, name) in DYNAMIC


def validate(doc: CpfDocument, *, known: frozenset[tuple[str, str]]) -> tuple[Problem, ...]:
    """IRIS's start-up checks. `known` is every (section, name) this version defines."""
    problems = [*_line_problems(doc, known), *_missing(doc), *_required_databases(doc)]
    return tuple(sorted(problems, key=lambda p: p.line))


def _line_problems(doc: CpfDocument, known: frozenset[tuple[str, str]]) -> Iterable[Problem]:
    seen: set[tuple[str | None, str | None]] = set()
    for number, line in enumerate(doc.lines, start=1):
        text = line.raw.strip()
        unknown = line.section not in KNOWN_SECTIONS and not (line.section or "").startswith("Map.")
        if line.kind is LineKind.SECTION and unknown:
            # Wording ours: no real text is known for an unknown section heading.
            yield Problem(number, f"Invalid section name '{text}' at line {number}")
        if line.kind is not LineKind.PARAM:
            continue
        key = (line.section, line.name)
        if key in seen:
            yield Problem(number, f"Duplicate line detected, LINE:'{text}' at line {number}")
        seen.add(key)
        yield from _param_problem(line.section or "", line.name or "", line.value or "", text,
                                  number, known)  # fmt: skip


def _param_problem(  # noqa: PLR0917 - one line's facts, passed through from the loop
    section: str, name: str, value: str, text: str, number: int, known: frozenset[tuple[str, str]]
) -> Iterable[Problem]:
    if section in FREE_SECTIONS or section.startswith("Map."):
        return
    if (section, name) not in known:
        yield Problem(number, f"Invalid parameter name '{name}', LINE:'{text}' at line {number}")
        return
    spec = RANGES.get((section, name))
    if spec is not None and not spec.accepts(value) and not _is_list_ok(section, name, value):
        # The form of IRIS's real "Property … required" line (HACK2), used for any bad value.
        yield Problem(number, f"Property 'Config.{section}::{name}({number}@Config.{section},"
                              f"ID=)' required")  # fmt: skip
    if (section, name) == ("config", "globals") and not _six_ints(value):
        yield Problem(number, f"Property 'Config.config::globals({number}@Config.config,ID=)' "
                              "required")  # fmt: skip


def _is_list_ok(section: str, name: str, value: str) -> bool:
    return (section, name) == ("config", "routines") and _six_ints(value)


def _six_ints(value: str) -> bool:
    parts = value.split(",")
    return len(parts) == 6 and all(p.strip().isdigit() for p in parts)


def _missing(doc: CpfDocument) -> Iterable[Problem]:
    by_section: dict[str, list[str]] = {}
    for section, name in REQUIRED:
        if doc.get(section, name) is None:
            by_section.setdefault(section, []).append(name)
    for section, names in by_section.items():
        line = doc.section_line(section) or len(doc.lines)
        joined = ",".join(names)
        yield Problem(line, f"The following parameters are missing from section [{section}]: "
                            f"'{joined}' at line {line}")  # fmt: skip


def _required_databases(doc: CpfDocument) -> Iterable[Problem]:
    names = {name for name, _ in doc.params("Databases")}
    line = doc.section_line("Databases") or len(doc.lines)
    for required in REQUIRED_DATABASES:
        if required not in names:
            yield Problem(line, f"Required database {required} is not defined at line {line}")


def known_parameters(template: CpfDocument) -> frozenset[tuple[str, str]]:
    """The (section, name) pairs a version defines: those of its default CPF, plus extras."""
    pairs = {
        (line.section or "", line.name or "")
        for line in template.lines
        if line.kind is LineKind.PARAM
    }
    extras = {("config", n) for n in ("Asyncwij", "wduseasyncio", "Maxprocesses", "synctype")}
    return frozenset(pairs | extras | {("Startup", "EnableSharding")})
