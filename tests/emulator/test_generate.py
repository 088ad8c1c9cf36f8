"""`irisd generate`: deterministic across processes, every line parses and classifies."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from irisd.cli import AREAS
from irisd.core.model import LogEntry
from irisd.core.pipeline import classify_text
from irisd.emulator import generate
from irisd.rules import default_classifier

CMD = [sys.executable, "-m", "irisd.cli", "generate", "--count", "200", "--seed", "5"]


def test_byte_identical_across_processes() -> None:
    one = subprocess.run(CMD, check=True, capture_output=True).stdout
    two = subprocess.run(CMD, check=True, capture_output=True).stdout
    assert one == two
    assert one.count(b"\n") >= 200


def test_generated_lines_classify_to_their_codes_and_respect_filters() -> None:
    entries = generate.generate(category="memory", count=100, low=1, high=3, seed=1)
    classified = classify_text(generate.render_log(entries), classifier=default_classifier())
    assert len(classified) == 100
    for entry, got in zip(entries, classified, strict=True):
        assert isinstance(got.entry, LogEntry)
        assert got.classification.code == entry.line.code
        assert entry.category == "memory"
        assert 1 <= entry.line.severity <= 3
    assert [e.at for e in entries] == sorted(e.at for e in entries)


def test_bad_input_is_one_line_and_exit_64() -> None:
    for args in (["--category", "nope"], ["--severity", "3-1"], ["--severity", "x"]):
        done = subprocess.run([*CMD[:4], *args], capture_output=True, text=True, check=False)
        assert done.returncode == 64
        assert done.stderr.count("\n") == 1
        assert not done.stdout


HEAVY = ("aiohttp", "pydantic", "pydantic_settings", "openai", "psutil", "irisd.config",
         "irisd.api.client", "irisd.shell.store", "asyncio")  # fmt: skip


def test_the_template_path_imports_nothing_heavy() -> None:
    """What keeps `irisd generate --count 1000` under 500 ms as a command (bench/generate.py)."""
    probe = (
        "import sys\nfrom irisd.cli import main\ncode = main(['generate', '--count', '3'])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), code, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stderr == "[] 0\n"
    assert done.stdout.count("\n") == 3


def test_the_cli_area_table_matches_what_each_area_registers() -> None:
    for area, words in AREAS.items():
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(area).add_commands(sub)
        assert set(sub.choices) == set(words), area


def test_help_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "irisd", "--help"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    for words in AREAS.values():
        for word in words:
            assert f"\n    {word} " in done.stdout or f"\n    {word}\n" in done.stdout, word
