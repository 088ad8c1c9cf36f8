"""Classify entries with an ordered rule table: first match wins, unknown messages are kept.

Theory of operation
-------------------
A rule looks at an entry's *key*: its category and the first two lines of its message. Matching
regexes against every entry is what costs (the real log has ~12k entries but only ~700 distinct
message shapes), so results are cached twice:

* by the exact key, for repeats of the same text (bounded; cleared when it grows past its cap);
* by the key's *shape*, every digit replaced by "0" (length-preserving, so `\\d{3}` still sees three
  digits). A shape result is only reused when no rule that could have matched first can tell digits
  apart: rules whose regexes contain a literal digit (for example `Error 28`) are "digit-sensitive",
  and a result is stored under the shape only if it came from a rule before the first sensitive one.
  So the cache never changes an answer; it only avoids recomputing it.

A rule may raise an entry's severity (`severity = 2`), never lower it. Anything no rule matches is
`unknown.<severity name>` with the line's own severity.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from irisd.core.model import SEVERITY_NAMES, Classification, Severity

SUBSYSTEMS: Final = frozenset(
    [
        "lifecycle",
        "memory",
        "lock",
        "license",
        "journal",
        "database",
        "wij",
        "writedaemon",
        "process",
        "config",
        "security",
        "mirror",
        "ecp",
        "sharding",
        "backup",
        "monitor",
        "upgrade",
        "web",
        "app",
        "unknown",
    ]
)
ERROR_TYPES: Final = frozenset(
    [
        "none",
        "availability",
        "resource",
        "license",
        "config",
        "security",
        "integrity",
        "unknown",
        "unparsed",
    ]
)
_CODE: Final = re.compile(r"[a-z]+\.[a-z0-9_]+(?:\.[a-z0-9_]+)?")
# Digits masked in the key's UTF-8 bytes: bytes.translate is a table lookup per byte, about 15x
# faster than str.translate's dict lookups, and the same shapes (no multi-byte UTF-8 sequence
# holds an ASCII byte, so a key's digits are exactly its bytes 0x30-0x39).
_DIGITS: Final = bytes.maketrans(b"0123456789", b"0000000000")
_KEY_LINE_MAX: Final = 300
# Cache bounds, in entries. Keys run to a few hundred characters; a log whose messages all differ
# (a counter, a pid, a hex id in the text) fills a cache to its bound, which is then memory the
# daemon holds for good. 4,096 exact keys keep the recently repeated messages; shapes are few in
# practice (about 700 in a real log) and 16,384 leave room for logs with unmasked ids.
_EXACT_MAX: Final = 4096
_SHAPE_MAX: Final = 16384
UNPARSED: Final = Classification("unknown.unparsed", "unparsed", Severity.WARNING, "unparsed")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    code: str
    error_type: str
    pattern: re.Pattern[str]
    category: re.Pattern[str] | None = None
    severity: Severity = Severity.INFO
    digit_sensitive: bool = False

    def matches(self, category: str, text: str) -> bool:
        if self.category is not None and self.category.fullmatch(category) is None:
            return False
        return self.pattern.search(text) is not None


@dataclass(frozen=True, slots=True)
class RuleError:
    """A rule that could not be loaded: where it is, which field, and why."""

    source: str
    index: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: rule {self.index}: {self.field}: {self.reason}"


def key_of(category: str | None, message: str) -> str:
    """The text a rule sees: the category, NUL, then the message's first two lines (capped)."""
    cap = _KEY_LINE_MAX
    nl = message.find("\n", 0, cap + 1)
    if nl < 0:
        first, second = message[:cap], ""
        if len(message) > cap:  # a long first line: the second starts after its end
            end = message.find("\n", cap)
            second = "" if end < 0 else message[end + 1 : end + 1 + cap].partition("\n")[0]
    else:
        first = message[:nl]
        second = message[nl + 1 : nl + 1 + cap].partition("\n")[0]
    return f"{category or ''}\0{first}\n{second}"


class Classifier:
    """Classify (category, message, severity) triples with a compiled rule list."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._sensitive = tuple(i for i, r in enumerate(self.rules) if r.digit_sensitive)
        self._exact: dict[str, tuple[Classification, ...]] = {}
        self._shape: dict[bytes, tuple[int, tuple[Classification, ...]]] = {}
        self._unknown = tuple(
            Classification(f"unknown.{SEVERITY_NAMES[s]}", "none" if s == 0 else "unknown", s, "")
            for s in Severity
        )

    def classify(self, category: str | None, message: str, severity: Severity) -> Classification:
        return self.classify_key(key_of(category, message), severity)

    def classify_key(self, key: str, severity: Severity) -> Classification:
        by_severity = self._exact.get(key)
        if by_severity is None:
            by_severity = self._lookup(key)
        return by_severity[severity]

    def _lookup(self, key: str) -> tuple[Classification, ...]:
        """Two keys that differ only in digits have one shape. The shape's first matching rule,
        when it reads no literal digit, matches every key of that shape, and every rule ahead
        of it that reads none fails on all of them; only the few digit-reading rules ahead of it
        must be asked again for each key."""
        shape = key.encode("utf-8", "surrogatepass").translate(_DIGITS)
        cached = self._shape.get(shape)
        if cached is not None:
            result = self._digit_rules_before(cached[0], key) or cached[1]
        else:
            index, result = self._evaluate(key)
            if index == len(self.rules) or not self.rules[index].digit_sensitive:
                self._remember(self._shape, shape, (index, result), _SHAPE_MAX)
        self._remember(self._exact, key, result, _EXACT_MAX)
        return result

    def _digit_rules_before(self, index: int, key: str) -> tuple[Classification, ...] | None:
        category, _, text = key.partition("\0")
        for i in self._sensitive:
            if i >= index:
                break
            if self.rules[i].matches(category, text):
                return self._results(self.rules[i])
        return None

    def _evaluate(self, key: str) -> tuple[int, tuple[Classification, ...]]:
        category, _, text = key.partition("\0")
        for index, rule in enumerate(self.rules):
            if rule.matches(category, text):
                return index, self._results(rule)
        return len(self.rules), self._unknown

    @staticmethod
    def _results(rule: Rule) -> tuple[Classification, ...]:
        return tuple(
            Classification(rule.code, rule.error_type, max(s, rule.severity), rule.id)
            for s in Severity
        )

    @staticmethod
    def _remember(cache: dict[Any, Any], key: str | bytes, value: Any, limit: int) -> None:
        if len(cache) >= limit:
            cache.clear()
        cache[key] = value


def load_rules(documents: Iterable[tuple[str, str]]) -> tuple[list[Rule], list[RuleError]]:
    """Compile rule documents, given as (source name, TOML text), in priority order.

    Every document may also hold `disable = ["rule id", ...]` to switch off rules from any document;
    an id no rule has is an error (a typo would otherwise leave the rule on, silently).
    Returns the rules and every error found (a caller refuses to start when there are errors).
    """
    rules: list[Rule] = []
    errors: list[RuleError] = []
    disabled: dict[str, str] = {}  # rule id → the document that disables it
    for source, text in documents:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            errors.append(RuleError(source, 0, "toml", str(exc)))
            continue
        errors += _document_errors(source, doc)
        disable, table = doc.get("disable", []), doc.get("rule", [])
        if isinstance(disable, list):
            disabled.update((str(x), source) for x in disable)
        for index, raw in enumerate(table if isinstance(table, list) else [], 1):
            compiled = _compile(source, index, raw)
            if isinstance(compiled, RuleError):
                errors.append(compiled)
            else:
                rules.append(compiled)
    known = {r.id for r in rules}
    errors += [
        RuleError(where, 0, "disable", f"no rule has the id {rule_id!r}")
        for rule_id, where in disabled.items()
        if rule_id not in known
    ]
    return [r for r in rules if r.id not in disabled], errors


def _document_errors(source: str, doc: dict[str, object]) -> list[RuleError]:
    errors = []
    unknown_keys = set(doc) - {"rule", "disable"}
    if unknown_keys:
        errors.append(RuleError(source, 0, sorted(unknown_keys)[0], "unknown top-level key"))
    if not isinstance(doc.get("rule", []), list):
        errors.append(RuleError(source, 0, "rule", "must be an array of tables ([[rule]])"))
    if not isinstance(doc.get("disable", []), list):
        errors.append(RuleError(source, 0, "disable", "must be a list of rule ids"))
    return errors


_RULE_KEYS: Final = frozenset({"id", "code", "error_type", "match", "category", "severity"})


def _compile(source: str, index: int, raw: object) -> Rule | RuleError:
    def fail(field: str, reason: str) -> RuleError:
        return RuleError(source, index, field, reason)

    if not isinstance(raw, dict):
        return fail("rule", "must be a table")
    extra = set(raw) - _RULE_KEYS
    if extra:
        return fail(sorted(extra)[0], "unknown key")
    code, error_type, match = raw.get("code"), raw.get("error_type"), raw.get("match")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        return fail("code", "must look like 'subsystem.kind' in lower case")
    if code.split(".")[0] not in SUBSYSTEMS:
        return fail("code", f"subsystem must be one of {', '.join(sorted(SUBSYSTEMS))}")
    if error_type not in ERROR_TYPES:
        return fail("error_type", f"must be one of {', '.join(sorted(ERROR_TYPES))}")
    severity = raw.get("severity", 0)
    if not isinstance(severity, int) or isinstance(severity, bool) or not 0 <= severity <= 3:
        return fail("severity", "must be an integer 0-3")
    if match is None:
        return fail("match", "is required")
    pattern = _regex(match, re.MULTILINE)
    if isinstance(pattern, str):
        return fail("match", pattern)
    category = _regex(raw.get("category"), 0) if "category" in raw else None
    if isinstance(category, str):
        return fail("category", category)
    # The default id is the rule's place in its own file, so it does not move when rules are
    # added in other files (an operator's `disable` names default rules by these ids).
    rule_id = raw.get("id", f"{code}#{index}")
    if not isinstance(rule_id, str) or not rule_id:
        return fail("id", "must be a non-empty string")
    return Rule(
        id=rule_id,
        code=code,
        error_type=error_type,
        pattern=pattern,
        category=category,
        severity=Severity(severity),
        digit_sensitive=_digit_sensitive(pattern)
        or (category is not None and _digit_sensitive(category)),
    )


def _regex(value: object, flags: int) -> re.Pattern[str] | str:
    if not isinstance(value, str):
        return "must be a string (a regular expression)"
    try:
        return re.compile(value, flags)
    except re.error as exc:
        return f"invalid regular expression: {exc}"


def _digit_sensitive(pattern: re.Pattern[str]) -> bool:
    """True if the regex could tell one digit from another (a literal digit, a digit range, a
    back-reference). `\\d`, `\\w`, `.` and negated sets treat all digits alike."""
    import re._parser as sre_parse  # type: ignore[import-not-found]  # the stdlib's own regex parser

    return _sensitive(sre_parse.parse(pattern.pattern, pattern.flags))


def _sensitive(items: object) -> bool:
    import re._constants as c  # type: ignore[import-not-found]

    for op, arg in items:  # type: ignore[attr-defined]
        if op in (c.LITERAL, c.NOT_LITERAL) and 48 <= arg <= 57:  # "5", "[^5]"
            return True
        if op is c.RANGE and arg[0] <= 57 and arg[1] >= 48:
            return True
        if op in (c.GROUPREF, c.GROUPREF_EXISTS):
            return True
        if op is c.IN and _sensitive(arg):
            return True
        if op is c.BRANCH and any(_sensitive(b) for b in arg[1]):
            return True
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and _sensitive(arg[2]):
            return True
        if op is c.SUBPATTERN and _sensitive(arg[3]):
            return True
        if op in (c.ASSERT, c.ASSERT_NOT) and _sensitive(arg[1]):
            return True
        if op is c.ATOMIC_GROUP and _sensitive(arg):
            return True
    return False
