"""The CPF library: lossless round trip, lookups, edits, duplicates and merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from irisd.core import cpf
from irisd.core.cpf import Change, LineKind

SHARED = Path("/work/shared/iris/cpf")
SAMPLE = (
    "[ConfigFile]\nProduct=IRIS\nVersion=2025.1\n\n"
    "[config]\nglobals=0,0,0,0,0,0\ngmheap=0\nlocksiz=0\n\n[Startup]\nDefaultPort=1972\n"
)


@pytest.mark.parametrize(
    "text",
    [
        SAMPLE,
        SAMPLE.replace("\n", "\r\n"),
        "[a]\r\nx=1\ny=2\r\n",  # mixed endings
        "[a]\nx=1",  # no final newline
        "  [a]  \n  x = 1  \n\n",  # spaces around
        "/* block\ncomment */\n; semi\n# hash\n// slashes\n[a]\nx=1 #; trailing\n",
        "",
        "\n\n",
    ],
    ids=["lf", "crlf", "mixed", "no-final-newline", "spaces", "comments", "empty", "blank"],
)
def test_render_of_parse_is_byte_identical(text: str) -> None:
    assert cpf.render(cpf.parse(text)) == text


@pytest.mark.parametrize("path", sorted(SHARED.glob("*.cpf")), ids=lambda p: p.name[:20])
def test_real_cpf_files_round_trip(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert cpf.render(cpf.parse(text)) == text


def test_value_splits_on_first_equals_only() -> None:
    doc = cpf.parse("[SqlSysDatatypes]\nDEC(%1)=%Library.Numeric(MAXVAL=<|'x'|>,SCALE=0)\n")
    assert doc.get("SqlSysDatatypes", "DEC(%1)") == "%Library.Numeric(MAXVAL=<|'x'|>,SCALE=0)"


def test_trailing_comment_is_kept_apart_from_the_value() -> None:
    doc = cpf.parse("[config]\ngmheap=307200 #; raised for dejournaling\n")
    assert doc.get("config", "gmheap") == "307200"
    edited = cpf.set_value(doc, "config", "gmheap", "1048576")
    assert cpf.render(edited) == "[config]\ngmheap=1048576 #; raised for dejournaling\n"


def test_values_with_hash_and_semicolon_are_not_comments() -> None:
    doc = cpf.parse("[DeviceSubTypes]\nM/UX=255^#^66^$C(8)^^^^^\n[SQL]\nIdTrxFrom=~ `!@#$%;':\n")
    assert doc.get("DeviceSubTypes", "M/UX") == "255^#^66^$C(8)^^^^^"
    assert doc.get("SQL", "IdTrxFrom") == "~ `!@#$%;':"


def test_names_are_case_exact() -> None:
    doc = cpf.parse(SAMPLE)
    assert doc.get("config", "gmheap") == "0"
    assert doc.get("config", "GMHEAP") is None
    assert doc.get("Config", "gmheap") is None


def test_set_value_rewrites_in_place_and_keeps_crlf() -> None:
    text = SAMPLE.replace("\n", "\r\n")
    edited = cpf.set_value(cpf.parse(text), "config", "locksiz", "67108864")
    assert cpf.render(edited) == text.replace("locksiz=0", "locksiz=67108864")


def test_set_value_adds_a_missing_parameter_at_the_end_of_its_section() -> None:
    edited = cpf.set_value(cpf.parse(SAMPLE), "config", "jrnbufs", "128")
    assert "locksiz=0\njrnbufs=128\n\n[Startup]" in cpf.render(edited)


def test_set_value_adds_a_missing_section_after_a_blank_line() -> None:
    edited = cpf.set_value(cpf.parse("[a]\nx=1"), "ECP", "ClientReconnectInterval", "10")
    assert cpf.render(edited) == "[a]\nx=1\n\n[ECP]\nClientReconnectInterval=10\n"


def test_duplicates_are_reported_with_the_line_of_the_repeat() -> None:
    doc = cpf.parse("[config]\nmemlock=0\ngmheap=0\nmemlock=0\n")
    (dup,) = cpf.duplicates(doc)
    assert (dup.section, dup.name, dup.line, dup.raw) == ("config", "memlock", 4, "memlock=0")


def test_set_value_never_creates_a_duplicate() -> None:
    doc = cpf.set_value(cpf.parse(SAMPLE), "config", "gmheap", "1")
    doc = cpf.set_value(doc, "config", "gmheap", "2")
    assert cpf.duplicates(doc) == ()
    assert doc.params("config").count(("gmheap", "2")) == 1


def test_merge_applies_parameters_and_reports_changes_but_skips_actions() -> None:
    patch = cpf.parse(
        "# Example merge file\n[config]\ngmheap=256000\nlocksiz=0\n"
        "[Actions]\nCreateDatabase:Name=APP,Directory=/data/app\n"
    )
    merged, changes = cpf.merge(cpf.parse(SAMPLE), patch)
    assert changes == (Change("config", "gmheap", "0", "256000"),)
    assert merged.get("config", "gmheap") == "256000"
    assert "Actions" not in merged.sections()


def test_remove_drops_every_occurrence() -> None:
    doc = cpf.remove(cpf.parse("[config]\nmemlock=0\nx=1\nmemlock=1\n"), "config", "memlock")
    assert cpf.render(doc) == "[config]\nx=1\n"


def test_line_kinds() -> None:
    doc = cpf.parse("[a]\n; c\nx=1\nnot a param\n\n")
    assert [line.kind for line in doc.lines] == [
        LineKind.SECTION, LineKind.COMMENT, LineKind.PARAM, LineKind.OTHER, LineKind.BLANK,
    ]  # fmt: skip
