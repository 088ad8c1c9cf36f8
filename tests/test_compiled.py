"""The hot path as it ships: compiled by mypyc (setup.py) where the host has a C compiler.

Two promises: compiled modules are never stale (older than the source beside them, which Python
would import in its place, so an edit would silently not run), and the compiled and the plain
modules give byte-identical output on the real sample log, through every hot module: the
assembler, the header parse, the classifier, the summary scanner, the event JSON and row, and
the counts.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from irisd._hot import HOT_MODULES, hot_path, hot_sources

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "messages.log"


def test_compiled_modules_are_the_ones_imported_and_newer_than_their_source() -> None:
    for module, relative in zip(HOT_MODULES, hot_sources(), strict=True):
        source = ROOT / relative
        built = sorted(source.parent.glob(source.stem + ".*.so"))
        if not built:
            continue
        assert len(built) == 1, f"{module}: more than one compiled file: {built}"
        assert built[0].stat().st_mtime >= source.stat().st_mtime, (
            f"{source.relative_to(ROOT)} changed after it was compiled; rebuild with `make venv` "
            "(or `pip install -e .`), or its old compiled form runs instead of the edit"
        )
        assert importlib.import_module(module).__file__ == str(built[0])


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI builds with a C compiler")
def test_ci_runs_the_compiled_hot_path() -> None:
    """CI installs a compiler (.ci/run), so the suite there tests what ships."""
    assert hot_path() == "compiled"


# Prints one JSON document of what the hot modules make of the sample: the hot path it ran,
# `irisd classify --json` and `--summary` output, every event's stored JSON and database row, and
# the tailer's counts (in a zone with daylight saving time, so the clock's DST handling runs too).
PROBE = """
import hashlib, io, json, sys
from pathlib import Path
if sys.argv[2]:
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, sys.argv[2])
from zoneinfo import ZoneInfo
import irisd
from irisd._hot import hot_path
from irisd.core.eventjson import dumps_event
from irisd.core.events import EventBuilder, tally
from irisd.shell.schema import event_rows
from irisd.core.lines import LineAssembler
from irisd.core.logline import LocalClock
from irisd.offline import classify_files
from irisd.rules import default_classifier
sample, zone = sys.argv[1], ZoneInfo("Europe/Paris")
lines = io.StringIO()
classify_files([sample], lines, zone=zone, rules_dir=None, mode="json")
summary = classify_files([sample], io.StringIO(), zone=zone, rules_dir=None, mode="summary")
builder = EventBuilder(host="h", instance="IRIS", source="s", clock=LocalClock(zone),
                       classifier=default_classifier())
assembler, raws = LineAssembler(), []
data = Path(sample).read_bytes()
for at in range(0, len(data), 4096):
    raws += assembler.feed(data[at:at + 4096])
raws += assembler.flush(final=True)
built = [builder.build(raw) for raw in raws]
events = [dumps_event(e) for e in built]
rows = event_rows(built, lambda name: 7, 1.5)
t = tally(raws, built)
print(json.dumps({
    "irisd": irisd.__file__, "hot_path": hot_path(),
    "lines": lines.getvalue().count("\\n"),
    "json": hashlib.sha256(lines.getvalue().encode()).hexdigest(),
    "summary": summary, "events": len(events),
    "events_json": hashlib.sha256("\\n".join(events).encode()).hexdigest(),
    "rows": hashlib.sha256(repr(rows).encode()).hexdigest(),
    "tally": [t.lines, t.decode_errors, t.cut_lines, t.unparsed, sorted(t.by_code.items())],
}))
"""


def probe(pure_tree: Path | None) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(SAMPLE), str(pure_tree or "")],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(hot_path() != "compiled", reason="the hot path is not compiled here")
def test_compiled_and_pure_python_agree_byte_for_byte_on_the_real_log(tmp_path: Path) -> None:
    pure = tmp_path / "pure"
    shutil.copytree(
        ROOT / "irisd", pure / "irisd", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    compiled, plain = probe(None), probe(pure)
    assert compiled["hot_path"] == "compiled"
    assert plain["hot_path"] == "pure Python"
    assert str(plain["irisd"]).startswith(str(pure))
    summary = compiled["summary"]
    assert isinstance(summary, dict)
    assert summary["entries"] > 10_000  # the sample went through, not an empty run
    assert compiled["events"] == summary["entries"]
    tallied = compiled["tally"]
    assert isinstance(tallied, list)
    assert tallied[0] == summary["lines"]
    for key in ("lines", "json", "summary", "events", "events_json", "rows", "tally"):
        assert compiled[key] == plain[key], key
