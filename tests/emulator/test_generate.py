"""`irisd generate`: deterministic across processes, every line parses and classifies."""

from __future__ import annotations

import subprocess
import sys

from irisd.core.model import LogEntry
from irisd.core.pipeline import classify_text
from irisd.emulator import generate

CMD = [sys.executable, "-m", "irisd.cli", "generate", "--count", "200", "--seed", "5"]


def test_byte_identical_across_processes() -> None:
    one = subprocess.run(CMD, check=True, capture_output=True).stdout
    two = subprocess.run(CMD, check=True, capture_output=True).stdout
    assert one == two
    assert one.count(b"\n") >= 200


def test_generated_lines_classify_to_their_codes_and_respect_filters() -> None:
    entries = generate.generate(category="memory", count=100, low=1, high=3, seed=1)
    classified = classify_text(generate.render_log(entries))
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
