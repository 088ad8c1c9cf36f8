"""Redaction: every kind of secret leaves the line, everything else stays byte for byte."""

from __future__ import annotations

import pytest

from irisd.core.redact import REDACTED, Redactor, redact

R = REDACTED
CASES = [
    # (id, text, expected)
    ("auth-header-bearer", "Authorization: Bearer abc.def-ghi", f"Authorization: Bearer {R}"),
    ("auth-header-basic", "authorization=Basic dXNlcjpwYXNz", f"authorization=Basic {R}"),
    ("auth-header-bare", "Proxy-Authorization: s3cr3tvalue", f"Proxy-Authorization: {R}"),
    ("bearer-anywhere", "sent bearer eyJhbGciOi.eyJzdWIi.sig=", f"sent bearer {R}"),
    ("query-token", "GET /x?token=abc123&page=2 HTTP/1.1", f"GET /x?token={R}&page=2 HTTP/1.1"),
    ("query-access-token", "u?a=1&access_token=zz9", f"u?a=1&access_token={R}"),
    ("kv-password", "login user=bob password=hunter2 ok", f"login user=bob password={R} ok"),
    ("kv-passwd-spaces", "passwd = hunter2", f"passwd = {R}"),
    ("kv-prefixed", "DB_PASSWORD=x1 X_TOKEN=y2", f"DB_PASSWORD={R} X_TOKEN={R}"),
    ("kv-secret-quoted", 'secret="a b c" next', f'secret="{R}" next'),
    ("kv-single-quoted", "db_password='a b c' next", f"db_password='{R}' next"),
    ("kv-api-key-forms", "api_key=a apikey=b api-key=c X-Api-Key=d",
     f"api_key={R} apikey={R} api-key={R} X-Api-Key={R}"),
    ("kv-credentials", "credentials=abc;x=1", f"credentials={R};x=1"),
    ("json-string", '{"password": "hun\\"ter", "u": "bob"}', f'{{"password": "{R}", "u": "bob"}}'),
    ("json-number", '{"api_key": 12345, "n": 1}', f'{{"api_key": {R}, "n": 1}}'),
    ("json-authorization", '{"Authorization": "Bearer xyz"}', f'{{"Authorization": "{R}"}}'),
    ("json-client-secret", '{"client_secret":"q"}', f'{{"client_secret":"{R}"}}'),
    ("url-userinfo", "postgres://bob:s3cr3t@db:5432/x", f"postgres://bob:{R}@db:5432/x"),
    ("url-userinfo-empty-user", "redis://:pw@cache", f"redis://:{R}@cache"),
    ("openai-key", "key sk-proj-abcdefghijklmnopqrstuv used", f"key sk-{R} used"),
    ("openai-key-legacy", "sk-ABCDEFGHIJKLMNOPQRST1234", f"sk-{R}"),
    ("iris-key-authorization", "AuthorizationKey=ABCDEF1234567890", f"AuthorizationKey={R}"),
    ("iris-key-license", "LicenseKey = 1234-5678", f"LicenseKey = {R}"),
    ("iris-key-bare-line", "[License]\nKey=ZZ99\nOrder=8", f"[License]\nKey={R}\nOrder=8"),
    ("cli-option", "run --password hunter2 --user x", f"run --password {R} --user x"),
    ("cli-option-equals", "run --api-key=abc", f"run --api-key={R}"),
    ("multiline", "a\ntoken=1\nb password=2", f"a\ntoken={R}\nb password={R}"),
]  # fmt: skip

UNTOUCHED = [
    ("iris-line", "11/14/25-08:42:05:123 (1234) 0 [Utility.Event] Enabling logons"),
    ("iris-license-line", "0 [Generic.Event] IRIS license file (iris.key) must be validated"),
    ("counts-named-like-secrets", "tokens=5 keys=3 passwords: 2"),
    ("url-with-port", "http://host:8080/path?page=2"),
    ("key-mid-line", "primary Key=42 in table"),
    ("short-sk", "task-sk-1 ask-me"),
    ("empty", ""),
    ("unicode", "Zürich — naïve 東京"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_redacts(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


@pytest.mark.parametrize("text", [u[1] for u in UNTOUCHED], ids=[u[0] for u in UNTOUCHED])
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert Redactor()(text) == text


def test_registered_literals_are_redacted_anywhere() -> None:
    redactor = Redactor(["hmac-key-123", "tok_ABCDEFGH"])
    assert redactor("sig hmac-key-123 and xtok_ABCDEFGHx") == f"sig {R} and x{R}x"


def test_longer_literal_wins_over_its_prefix() -> None:
    redactor = Redactor(["abcdef", "abcdefghij"])
    assert redactor("abcdefghij") == R


def test_short_literals_are_ignored() -> None:
    """A five-character "secret" would shred ordinary words; it is not registered."""
    assert Redactor(["a", "abcde"])("a abcde") == "a abcde"


def test_with_literals_adds_to_existing() -> None:
    redactor = Redactor(["first-secret"]).with_literals(["second-secret"])
    assert redactor("first-secret second-secret") == f"{R} {R}"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("irisd_token", "abc", R),
        ("IRISD_API_KEY", "abc", R),
        ("password", "p", R),
        ("license_key", "k", R),
        ("irisd_code", "journal.error", "journal.error"),
        ("irisd_url", "http://u:pw@h/", f"http://u:{R}@h/"),
        ("key", "cache-key", "cache-key"),
    ],
)
def test_field_redacts_by_name_or_content(name: str, value: str, expected: str) -> None:
    assert Redactor().field(name, value) == expected


def test_redact_function_matches_redactor() -> None:
    assert redact("password=x secret-value", ["secret-value"]) == f"password={R} {R}"
