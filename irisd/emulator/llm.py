"""`irisd generate --llm`, the decisions: few-shot examples, the prompt, checking what the model
returns, re-stamping what is kept, and the report. No network here (`llm_client` asks the model);
the only I/O is reading the sample files.

Theory of operation. A session asks an OpenAI-compatible model for entries of one subsystem and
severity range, a batch at a time, and keeps only what irisd itself accepts. Each reply is cut
into entries by irisd's own line assembler and parser and classified by its rule table; an entry
is accepted when its header parses, it names a category, its severity digit is in the range, and
it classifies to a known code (in the requested subsystem, when one was asked for). Everything
else is rejected and counted by reason; nothing is repaired. Accepted entries are re-stamped as
the template path stamps its own: timestamps sequential from the anchor with seeded gaps, and each
pid the model used (in the header or as `pid N` / `process N` in the text) mapped to one pid of
the session, so a process keeps its pid from entry to entry.

Few-shot examples are real IRIS entries: `log_samples/` of a checkout, else the packaged copy
`data/fewshot.log` (entries cut from log_samples/, at most three per code and severity, so an
installed wheel has them too), topped up with the emulator's own lines of the subsystem when the
samples hold too few.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from irisd.core.classify import Classifier
from irisd.core.model import LogEntry
from irisd.core.pipeline import Classified, classify_text
from irisd.emulator.generate import DEFAULT_ANCHOR, Generated, select
from irisd.emulator.logfmt import Line, render
from irisd.errors import UsageError

BATCH = 25  # entries per request: a reply that size stays well inside any model's output limit
EXAMPLES = 6
BASE_PID = 4120
_ENTRY = re.compile(r"\d\d/\d\d/\d\d-\d\d:\d\d:\d\d[:.]\d\d\d \((\d+)\) [0-3] \[([^\]\n]+)\] ?")
_PID_MENTION = re.compile(r"(?i)\b(pid:? ?|process )(\d+)")
_FENCE = re.compile(r"^\s*```")
_HEADER_INSIDE = re.compile(r"\d\d/\d\d/\d\d-\d\d:\d\d:\d\d[:.]\d\d\d \(\d+\)")


@dataclass(frozen=True, slots=True)
class Ask:
    category: str | None  # a taxonomy subsystem, or None for any
    low: int
    high: int

    def wants(self, code: str, severity: int) -> bool:
        in_subsystem = self.category is None or code.partition(".")[0] == self.category
        return in_subsystem and self.low <= severity <= self.high


# -- examples and prompt -----------------------------------------------------------------------


def sample_texts(directory: Path | None = None) -> list[str]:
    """The few-shot corpus: `directory`'s *.log (there must be some), else the checkout's
    log_samples/, else the copy packaged with irisd."""
    if directory is not None:
        texts = [p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.log"))]
        if not texts:
            raise UsageError(f"--llm-examples {directory}: no *.log files there")
        return texts
    checkout = Path(__file__).resolve().parents[2] / "log_samples"
    texts = [p.read_text(encoding="utf-8") for p in sorted(checkout.glob("*.log"))]
    return texts or [packaged_samples()]


def packaged_samples() -> str:
    return resources.files("irisd.emulator").joinpath("data/fewshot.log").read_text("utf-8")


def examples(
    texts: Iterable[str], ask: Ask, classifier: Classifier, *, seed: int, limit: int = EXAMPLES
) -> list[str]:
    """Up to `limit` real entries the ask wants (two per code at most, for variety), topped up
    with the emulator's own lines; when neither has any, entries of the severity range at all,
    which still show the format."""
    on_topic: list[tuple[str, str]] = []
    in_range: list[tuple[str, str]] = []
    for text in texts:
        for raw, severity, code in _entries(text, classifier):
            if ask.wants(code, severity):
                on_topic.append((code, raw))
            elif ask.low <= severity <= ask.high:
                in_range.append((code, raw))
    rng = random.Random(seed)  # noqa: S311 - seeded choice of examples, not security
    chosen = _varied(on_topic, rng, limit)
    if len(chosen) < 3:
        chosen += _varied(_pool(ask), rng, limit - len(chosen))
    return chosen or _varied(in_range, rng, limit)


def _entries(text: str, classifier: Classifier) -> list[tuple[str, int, str]]:
    """(entry text, severity, code) of every short, classified entry with a header."""
    data = text.encode()
    out = []
    for got in classify_text(text, classifier=classifier):
        entry, code = got.entry, got.classification.code
        if isinstance(entry, LogEntry) and entry.pid is not None and entry.lines <= 3:
            raw = data[entry.offset : entry.end].decode("utf-8", "replace").rstrip("\n")
            out.append((raw, int(entry.severity), code))
    return [found for found in out if not found[2].startswith("unknown.")]


def _varied(found: list[tuple[str, str]], rng: random.Random, limit: int) -> list[str]:
    per_code: dict[str, list[str]] = {}
    for code, raw in found:
        if raw not in per_code.setdefault(code, []):
            per_code[code].append(raw)
    picks = [raw for group in per_code.values() for raw in rng.sample(group, min(2, len(group)))]
    return rng.sample(picks, min(limit, len(picks)))


def _pool(ask: Ask) -> list[tuple[str, str]]:
    """The emulator's own lines of the subsystem, as (code, entry text)."""
    lines = select(ask.category, ask.low, ask.high) if ask.category else ()
    at = DEFAULT_ANCHOR
    return [
        (line.code, render(line, at + timedelta(seconds=n)).rstrip("\n"))
        for n, line in enumerate(lines)
    ]


def subsystems(classifier: Classifier) -> tuple[str, ...]:
    """The taxonomy subsystems irisd's rules can classify to."""
    return tuple(sorted({rule.code.partition(".")[0] for rule in classifier.rules}))


def kinds(classifier: Classifier, category: str | None) -> tuple[str, ...]:
    """The codes of `category` the rules know (none named when any subsystem will do)."""
    if category is None:
        return ()
    return tuple(sorted({r.code for r in classifier.rules if r.code.startswith(f"{category}.")}))


SYSTEM = (
    "You write entries of an InterSystems IRIS messages.log, exactly as IRIS writes them. "
    "Each entry is one line: MM/DD/YY-HH:MM:SS:mmm (pid) S [Category] message, where S is the "
    "severity digit (0 information, 1 warning, 2 severe error, 3 fatal error) and Category is "
    "IRIS's own (Generic.Event, Utility.Event, WriteDaemon.Pausing, ...). Only messages that IRIS "
    "really writes across several lines continue on lines without a timestamp. Reply with the "
    "entries only: no numbering, no commentary, no code fences."
)


def prompt(
    ask: Ask, count: int, shots: Sequence[str], codes: Sequence[str]
) -> list[dict[str, str]]:
    """The chat messages asking for `count` entries."""
    what = f"of the `{ask.category}` subsystem" if ask.category else "of any IRIS subsystem"
    if codes:
        what += f" (kinds: {', '.join(codes)})"
    severity = str(ask.low) if ask.low == ask.high else f"{ask.low} to {ask.high}"
    request = (
        f"Write {count} distinct, realistic messages.log entries {what}, with severity {severity}. "
        "Vary the processes, values and paths as a real instance would, in time order."
    )
    if shots:
        request += "\n\nReal messages.log entries, for the format and the wording:\n"
        request += "\n".join(shots)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": request}]


# -- checking a reply --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    pid: int
    severity: int
    category: str
    message: str  # after "[Category] ": continuation lines included, no final newline
    code: str


@dataclass(frozen=True, slots=True)
class Checked:
    accepted: tuple[Accepted, ...]
    rejected: Mapping[str, int]  # reason -> count

    @property
    def returned(self) -> int:
        return len(self.accepted) + sum(self.rejected.values())


def check(reply: str, ask: Ask, classifier: Classifier) -> Checked:
    """Cut a reply into entries with irisd's parser and judge each."""
    text, malformed = _unwrap(reply)
    data = text.encode()
    accepted: list[Accepted] = []
    rejected: Counter[str] = Counter(unparsed=malformed) if malformed else Counter()
    for got in classify_text(text, classifier=classifier):
        verdict = judge(got, data, ask)
        if isinstance(verdict, Accepted):
            accepted.append(verdict)
        else:
            rejected[verdict] += 1
    return Checked(tuple(accepted), dict(rejected))


def _unwrap(reply: str) -> tuple[str, int]:
    """The reply without the chat's wrapping (code fences, blank lines), and how many lines were
    an entry with something in front of its timestamp ("1. 03/01/25-…"). Left in, such a line
    would pass for a continuation of the entry before it; it is a malformed entry of its own."""
    kept: list[str] = []
    malformed = 0
    for line in reply.splitlines():
        if not line.strip() or _FENCE.match(line):
            continue
        if _HEADER_INSIDE.search(line) and not _HEADER_INSIDE.match(line):
            malformed += 1
            continue
        kept.append(line + "\n")
    return "".join(kept), malformed


def judge(got: Classified, data: bytes, ask: Ask) -> Accepted | str:
    """The accepted entry, or why not: unparsed, no_category, severity, unclassified, category."""
    entry = got.entry
    if not isinstance(entry, LogEntry) or entry.pid is None:
        return "unparsed"
    raw = data[entry.offset : entry.end].decode("utf-8", "replace").rstrip("\n")
    header = _ENTRY.match(raw)
    if header is None or not entry.category:
        return "no_category"
    code = got.classification.code
    if not ask.low <= entry.severity <= ask.high:
        return "severity"
    if code.startswith("unknown."):
        return "unclassified"
    if not ask.wants(code, int(entry.severity)):
        return "category"
    message = raw[header.end() :]
    return Accepted(entry.pid, int(entry.severity), header.group(2), message, code)


# -- re-stamping -------------------------------------------------------------------------------


class Restamper:
    """Sequential timestamps from `anchor` (seeded gaps, as the template path) and one session
    pid per pid the model used, so the same process keeps the same pid."""

    def __init__(self, *, seed: int, anchor: datetime = DEFAULT_ANCHOR) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - seeded simulation, not security
        self._at = anchor
        self._pids: dict[int, int] = {}
        self._next = BASE_PID

    def stamp(self, kept: Accepted) -> Generated:
        self._at += timedelta(milliseconds=self._rng.randrange(1, 4000))
        message = _PID_MENTION.sub(
            lambda m: m.group(1) + str(self.pid(int(m.group(2)))), kept.message
        )
        line = Line(0.0, self.pid(kept.pid), kept.severity, kept.category, message, kept.code)
        return Generated(self._at, line)

    def pid(self, model_pid: int) -> int:
        if model_pid not in self._pids:
            self._next += self._rng.randrange(1, 400)
            self._pids[model_pid] = self._next
        return self._pids[model_pid]


# -- the report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    asked: int
    seconds: float
    returned: int = 0
    accepted: int = 0
    rejected: Mapping[str, int] | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    base_url: str
    model: str
    temperature: float
    requests: tuple[Request, ...]
    seconds: float  # the whole session, wall clock
    emitted: int

    @property
    def requested(self) -> int:
        return sum(r.asked for r in self.requests)

    @property
    def returned(self) -> int:
        return sum(r.returned for r in self.requests)

    @property
    def accepted(self) -> int:
        return sum(r.accepted for r in self.requests)

    @property
    def rejected(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for r in self.requests:
            total.update(r.rejected or {})
        return dict(sorted(total.items()))

    @property
    def format_match_rate(self) -> float:
        """Accepted over returned: the share of what the model wrote that irisd accepts."""
        return self.accepted / self.returned if self.returned else 0.0

    def as_dict(self) -> dict[str, object]:
        latencies = [round(r.seconds * 1000, 1) for r in self.requests]
        return {
            "base_url": self.base_url, "model": self.model, "temperature": self.temperature,
            "requests": len(self.requests), "failed_requests": sum(1 for r in self.requests if r.error),
            "lines_requested": self.requested, "lines_returned": self.returned,
            "lines_accepted": self.accepted, "lines_rejected": sum(self.rejected.values()),
            "rejected_by_reason": self.rejected, "lines_emitted": self.emitted,
            "format_match_rate": round(self.format_match_rate, 4),
            "latency_ms": {"per_request": latencies, "total": round(self.seconds * 1000, 1)},
        }  # fmt: skip

    def text(self) -> list[str]:
        """The report for stderr, a few lines for a person."""
        reasons = ", ".join(f"{k} {v}" for k, v in self.rejected.items())
        ms = sorted(r.seconds * 1000 for r in self.requests) or [0.0]
        failed = sum(1 for r in self.requests if r.error)
        return [
            f"llm: {len(self.requests)} requests ({failed} failed) to {self.base_url}, model "
            f"{self.model}, temperature {self.temperature}",
            f"llm: lines requested {self.requested}, returned {self.returned}, accepted "
            f"{self.accepted}, rejected {sum(self.rejected.values())}"
            + (f" ({reasons})" if reasons else "")
            + f"; format match {self.format_match_rate:.1%}; emitted {self.emitted}",
            f"llm: latency per request min {ms[0]:.0f} ms, median {ms[len(ms) // 2]:.0f} ms, max "
            f"{ms[-1]:.0f} ms; total {self.seconds * 1000:.0f} ms",
        ]
