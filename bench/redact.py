"""What redaction costs a log line: the real sample, line by line, through the daemon's Redactor.

    .venv/bin/python bench/redact.py

Prints µs per line (the budget: a log line must not cost milliseconds).
"""

from __future__ import annotations

import time
from pathlib import Path

from irisd.core.redact import Redactor

SAMPLE = Path(__file__).resolve().parents[1] / "tests/data/messages.log"


def main() -> None:
    lines = SAMPLE.read_text(errors="replace").splitlines()
    redactor = Redactor(["registered-secret-1", "registered-secret-2"])
    started = time.perf_counter()
    for line in lines:
        redactor(line)
    per_line = (time.perf_counter() - started) / len(lines)
    print(f"redaction: {len(lines):,} real lines, {per_line * 1e6:.2f} µs per line")


if __name__ == "__main__":
    main()
