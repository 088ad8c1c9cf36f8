"""Secrets out of log lines: pure text in, text with every secret replaced by `[REDACTED]` out.

What counts as a secret:
- `Authorization:` / `Proxy-Authorization:` header values, and `Bearer <token>` anywhere;
- values of keys that name a secret (`token`, `password`, `passwd`, `pwd`, `secret`, `api_key`,
  `apikey`, `api-key`, `credential`, `authorization`, also with a prefix such as
  `access_token` or `db_password`) in `key=value` text, in URL query strings and in JSON;
- `--password value` style command-line options;
- the password in URL userinfo (`https://user:password@host`);
- OpenAI-style keys (`sk-…`);
- IRIS license key values (`AuthorizationKey=` in an `iris.key` file, `LicenseKey=`, and a bare
  `Key=` at the start of a line as key files write it);
- any literal value registered when the `Redactor` is built (sink secrets, the API token, the LLM
  key), wherever it appears.

Speed: one pass of one compiled alternation over the line, plus a substring test per registered
literal. A typical log line costs a few microseconds (bench in tests/core/test_redact.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

REDACTED: Final = "[REDACTED]"
MIN_LITERAL: Final = 6  # shorter "secrets" would shred ordinary words out of every line

# A pattern of key names, not a password (hence the S105 waiver).
_SECRET_NAME: Final = (
    r"[A-Za-z0-9_.\-]*?(?:token|passw(?:or)?d|pwd|secret|api[_-]?key|credentials?|authorization)"  # noqa: S105
)
# Every pattern below needs one of these (lower-cased) in the text; most log lines hold none, and
# a few substring tests are far cheaper than running the alternation.
_TRIGGERS: Final = (
    "token",
    "passw",
    "pwd",
    "secret",
    "key",
    "credential",
    "auth",
    "bearer",
    "://",
    "sk-",
)
_QUOTED: Final = r'"(?:[^"\\]|\\.)*"'

# Each branch captures what it keeps in group `keep`-like names; `_replace` rebuilds the match.
_PATTERN: Final = re.compile(
    "|".join(
        (
            # "Authorization: Bearer abc" / "authorization=Basic abc": keep the scheme word.
            r"(?P<hdr>\b(?:proxy-)?authorization\s*[:=]\s*)"
            r"(?:(?P<hdr_scheme>bearer|basic|token|digest|negotiate)\s+)?(?P<hdr_value>[^\s,;\"']+)",
            # "Bearer abc.def" anywhere else.
            r"(?P<bearer>\bbearer\s+)(?P<bearer_value>[A-Za-z0-9\-._~+/]+=*)",
            # JSON: "password": "x" or "api_key": 123.
            rf'(?P<json>"{_SECRET_NAME}"\s*:\s*)(?P<json_value>{_QUOTED}|[^\s,}}\]]+)',
            # key=value, also in query strings: token=abc&x=1, password='a b', secret="x".
            rf"(?P<kv>(?<![A-Za-z0-9]){_SECRET_NAME}\s*=\s*)"
            rf"(?P<kv_value>{_QUOTED}|'[^']*'|[^\s&,;\"']+)",
            # Command-line options: --password hunter2 (the --password=x form is key=value).
            rf"(?P<opt>(?<!\S)--{_SECRET_NAME}\s+)(?P<opt_value>[^\s\-]\S*)",
            # scheme://user:password@host
            r"(?P<url>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)(?P<url_value>[^\s/@]+)(?=@)",
            # sk-..., sk-proj-..., sk-ant-...
            r"(?P<sk>\bsk-)(?P<sk_value>[A-Za-z0-9_\-]{16,})",
            # License keys in key files, and a bare Key= at a line start.
            r"(?P<lic>\b(?:AuthorizationKey|LicenseKey)\s*=\s*|^\s*Key\s*=\s*)(?P<lic_value>\S+)",
        )
    ),
    re.IGNORECASE | re.MULTILINE,
)

_VALUE_GROUPS: Final = ("hdr", "bearer", "json", "kv", "opt", "url", "sk", "lic")


def _replace(match: re.Match[str]) -> str:
    kind = next(name for name in _VALUE_GROUPS if match.group(name) is not None)
    prefix = match.group(kind)
    if kind == "hdr" and match.group("hdr_scheme"):
        prefix += match.group("hdr_scheme") + " "
    value = match.group(f"{kind}_value")
    if value.startswith(('"', "'")):
        return f"{prefix}{value[0]}{REDACTED}{value[0]}"
    return prefix + REDACTED


def _secret_name(name: str) -> bool:
    return _NAME_ONLY.fullmatch(name) is not None


_NAME_ONLY: Final = re.compile(_SECRET_NAME + r"|(?:license|authorization)[_-]?key", re.IGNORECASE)


class Redactor:
    """A callable that redacts one text. Immutable; build a new one when the secrets change."""

    __slots__ = ("_literals",)

    def __init__(self, literals: Iterable[str] = ()) -> None:
        unique = {value for value in literals if len(value) >= MIN_LITERAL}
        # Longest first, so a secret containing another is replaced whole.
        self._literals: tuple[str, ...] = tuple(sorted(unique, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for literal in self._literals:
            if literal in text:
                text = text.replace(literal, REDACTED)
        lowered = text.lower()
        if any(trigger in lowered for trigger in _TRIGGERS):
            return _PATTERN.sub(_replace, text)
        return text

    def field(self, name: str, value: str) -> str:
        """A structured field's value: wholly redacted when its name says it is a secret."""
        if _secret_name(name.lower().removeprefix("irisd_")):
            return REDACTED
        return self(value)

    def with_literals(self, literals: Iterable[str]) -> Redactor:
        return Redactor((*self._literals, *literals))


def redact(text: str, literals: Iterable[str] = ()) -> str:
    """One-off redaction; keep a `Redactor` when redacting many lines."""
    return Redactor(literals)(text)
