"""`GET /events` query parameters: validated by pydantic at the boundary, resolved to `EventQuery`.

A query string is text. `parse_event_query` turns its multi-dict into the pydantic model
(list parameters may repeat or be comma-separated; any other parameter may appear once; an
unknown one is refused, so a typo never widens a search in silence), then into the frozen
`EventQuery` the daemon sees. Relative times (`15m`) need `now`, which the caller injects.
The first problem found becomes a `ParamError` naming the field and the reason: the API's 400.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from irisd.api.services import DEFAULT_LIMIT, MAX_LIMIT, CodePattern, EventQuery
from irisd.core.model import SEVERITY_NAMES, Severity

SeverityText = Literal["0", "1", "2", "3", "info", "warning", "severe", "fatal"]
CodeText = Annotated[
    str,
    StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?$"),
]
_RELATIVE = re.compile(r"(\d{1,9})([smhdw])\Z")
# An unencoded "+01:00" in a URL arrives as " 01:00" (form encoding): a time, a space, an offset.
_PLUS_AS_SPACE = re.compile(r"(\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)\Z")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CURSOR_PREFIX: Final = "seq:"
LIST_FIELDS: Final = frozenset({"code", "severity"})


class ParamError(Exception):
    """A request parameter is invalid: `field` names it, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def encode_cursor(seq: int) -> str:
    """An opaque `after` value: clients pass it back unchanged and never build one."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(value: object) -> int:
    text = str(value)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor given by this API") from None
    digits = raw.removeprefix(_CURSOR_PREFIX)
    if raw == digits or not digits.isdigit() or len(digits) > 19 or int(digits) >= 2**63:
        raise ValueError("not a cursor given by this API")
    return int(digits)


def parse_time(value: object, info: ValidationInfo) -> datetime:
    """ISO 8601 with a zone, or `<n><s|m|h|d|w>` before `now` (from the validation context)."""
    text = str(value).strip()
    relative = _RELATIVE.match(text)
    if relative:
        now: datetime = (info.context or {})["now"]
        seconds = int(relative.group(1)) * _UNITS[relative.group(2)]
        try:
            return now - timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError("too far back") from None
    try:
        moment = datetime.fromisoformat(_PLUS_AS_SPACE.sub(r"\1+\2", text))
    except ValueError:
        raise ValueError("not ISO 8601 (2026-03-01T12:00:00Z) nor relative (15m, 2h, 1d)") from None
    if moment.tzinfo is None:
        raise ValueError("needs a zone, e.g. Z or +01:00")
    return moment


TimeParam = Annotated[
    datetime,
    BeforeValidator(parse_time),
    WithJsonSchema({"type": "string", "examples": ["2026-03-01T12:00:00Z", "15m", "2h", "1d"]}),
]
CursorParam = Annotated[
    int,
    BeforeValidator(decode_cursor),
    WithJsonSchema({"type": "string"}),
]


class EventParams(BaseModel):
    """The parameters of `GET /events`, as a client writes them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: list[CodeText] = Field(
        default_factory=list,
        description="Taxonomy code, exact (`lock.table_full`) or a prefix (`lock.*`). "
        "Repeat or separate by commas for any of several.",
    )
    min_severity: SeverityText | None = Field(
        None, description="Events at least this severe: 0-3 or info, warning, severe, fatal."
    )
    severity: list[SeverityText] = Field(
        default_factory=list,
        description="Events of exactly these severities. Repeat or separate by commas.",
    )
    since: TimeParam | None = Field(
        None,
        description="Events at or after this time: ISO 8601 with a zone, or relative to now "
        "(30s, 15m, 2h, 1d, 1w).",
    )
    until: TimeParam | None = Field(
        None, description="Events before this time: ISO 8601 with a zone, or relative."
    )
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Events per page.")
    after: CursorParam | None = Field(
        None, description="Continue after a previous page: its `next`, unchanged (opaque)."
    )

    @model_validator(mode="after")
    def _window_is_ordered(self) -> EventParams:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ParamError("until", "must be later than since")
        return self

    def to_query(self, *, extra: int = 0) -> EventQuery:
        """The resolved query; `extra` more rows than `limit` (to learn if a next page exists)."""
        return EventQuery(
            codes=tuple(CodePattern.parse(c) for c in self.code),
            min_severity=None if self.min_severity is None else _severity(self.min_severity),
            severities=frozenset(_severity(s) for s in self.severity),
            since=None if self.since is None else self.since.timestamp(),
            until=None if self.until is None else self.until.timestamp(),
            limit=self.limit + extra,
            after=self.after,
        )


def _severity(text: SeverityText) -> Severity:
    return Severity(int(text)) if text.isdigit() else Severity(SEVERITY_NAMES.index(text))


def parse_event_params(items: Sequence[tuple[str, str]], *, now: datetime) -> EventParams:
    """Validate a query string's (key, value) pairs; raises `ParamError` on the first problem."""
    data = _collect(items)
    try:
        return EventParams.model_validate(data, context={"now": now})
    except ValidationError as exc:
        raise _first_error(exc) from None


def _collect(items: Sequence[tuple[str, str]]) -> Mapping[str, object]:
    data: dict[str, object] = {}
    for key, value in items:
        if key in LIST_FIELDS:
            values = data.setdefault(key, [])
            assert isinstance(values, list)
            values.extend(value.split(","))
        elif key in data:
            raise ParamError(key, "given more than once")
        else:
            data[key] = value
    return data


def _first_error(exc: ValidationError) -> ParamError:
    error = exc.errors(include_url=False)[0]
    loc = error["loc"]
    field = str(loc[0]) if loc else "query"
    if error["type"] == "extra_forbidden":
        return ParamError(field, "unknown parameter")
    if error["type"] == "string_pattern_mismatch":
        return ParamError(field, "neither a code (lock.table_full) nor a prefix (lock.*)")
    cause = (error.get("ctx") or {}).get("error")
    reason = str(cause) if isinstance(cause, ValueError) else error["msg"]
    return ParamError(field, reason)
