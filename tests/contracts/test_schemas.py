"""The JSON Schema files are generated from the models, and what irisd prints validates against them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import jsonschema
import pytest

from irisd.contracts import SCHEMAS, render
from irisd.core.eventjson import event_to_dict
from irisd.core.events import EventBuilder
from irisd.core.lines import assemble
from irisd.core.logline import LocalClock
from irisd.rules import default_classifier

ROOT = Path(__file__).resolve().parents[2]
LOG_SAMPLES = ROOT / "log_samples"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_files_match_the_models(name: str) -> None:
    expected = render(SCHEMAS[name])
    for directory in (ROOT / "irisd" / "schemas", ROOT / "docs" / "schemas"):
        assert (directory / name).read_text() == expected, (
            f"run: python -m irisd.contracts ({directory})"
        )


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        json.loads((ROOT / "irisd" / "schemas" / name).read_text())
    )


def _sample_files() -> list[Path]:
    files = sorted(LOG_SAMPLES.glob("*.log"))
    assert len(files) >= 10, "log_samples/ holds the representative selection"
    return files


def test_classify_json_output_validates() -> None:
    validator = _validator("log_entry.schema.json")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "irisd.cli",
            "classify",
            "--json",
            "--timezone",
            "UTC",
            *map(str, _sample_files()),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(out) > 100
    for line in out:
        validator.validate(json.loads(line))


def test_events_validate() -> None:
    validator = _validator("event.schema.json")
    builder = EventBuilder(
        host="h",
        instance="IRIS",
        source="1:2:ab:0",
        clock=LocalClock(UTC),
        classifier=default_classifier(),
    )
    count = 0
    for path in _sample_files():
        for raw in assemble(path.read_bytes()):
            validator.validate(event_to_dict(builder.build(raw)))
            count += 1
    assert count > 100


def test_a_malformed_event_is_rejected() -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validator("event.schema.json").validate({"event_id": "x"})
