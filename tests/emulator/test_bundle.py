"""`irisd bundle`: byte-identical across processes and hash seeds, a manifest that matches the
files, messages files irisd's own parser reads back to the promised answer, variants that do what
they say, and bad input refused in one line with nothing left behind."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from irisd.cli import main
from irisd.core import cpf
from irisd.core.model import LogEntry
from irisd.core.pipeline import Classified, classify_text
from irisd.emulator import bundle, scenarios
from irisd.emulator.bundle_write import Output
from irisd.errors import EmulatorError
from irisd.rules import default_classifier

ANCHOR = "2026-01-01T00:00:00Z"
NAMES = scenarios.names()
FAILING = [n for n in NAMES if n != "normal_load"]


@functools.cache
def _built(scenario: str, variant: str | None = None, seed: int = 1) -> bundle.Bundle:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return bundle.build(bundle.Spec(scenario, seed, at, variant=variant))


def _json(b: bundle.Bundle, name: str) -> Any:
    return json.loads(b.artifacts[name])


def _entries(b: bundle.Bundle, name: str) -> dict[int, Classified]:
    """Entries of one messages file by offset, every one of them parsed."""
    got = classify_text(b.artifacts[name].decode(), classifier=default_classifier())
    assert all(isinstance(c.entry, LogEntry) for c in got), name
    return {c.entry.offset: c for c in got if isinstance(c.entry, LogEntry)}


def _line_at(b: bundle.Bundle, name: str, offset: int) -> tuple[int, str]:
    data = b.artifacts[name]
    return data[:offset].count(b"\n") + 1, data[offset:].split(b"\n", 1)[0].decode()


def _samples(b: bundle.Bundle) -> list[tuple[str, str, float, float]]:
    text = b.artifacts["metrics.prom"].decode()
    return [(s.name, json.dumps(s.labels, sort_keys=True), s.value, float(s.timestamp or 0))
            for f in text_string_to_metric_families(text) for s in f.samples]  # fmt: skip


def _run(args: list[str], hash_seed: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    cmd = [sys.executable, "-m", "irisd.cli", "bundle", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# -- determinism and the manifest --------------------------------------------------------------


def test_all_is_byte_identical_across_processes_and_hash_seeds_and_shows_progress(
    tmp_path: Path,
) -> None:
    runs = [_run(["--all", "--seed", "1", "--anchor", ANCHOR, "--out", str(tmp_path / seed)], seed)
            for seed in ("0", "4242")]  # fmt: skip
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    one, two = _tree(tmp_path / "0"), _tree(tmp_path / "4242")
    assert one == two
    assert {k.split("/")[0] for k in one} == set(NAMES)
    progress = runs[0].stderr.splitlines()
    assert progress == [f"[{n}/{len(NAMES)}] {name} ... ok" for n, name in enumerate(NAMES, 1)]
    assert runs[0].stdout.splitlines() == [str(tmp_path / "0" / name) for name in NAMES]


def test_variants_are_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    args = ["--scenario", "process_error_storm", "--variants", "--seed", "3", "--anchor", ANCHOR]
    runs = [_run([*args, "--out", str(tmp_path / s)], s) for s in ("1", "77")]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert _tree(tmp_path / "1") == _tree(tmp_path / "77")
    assert len(list((tmp_path / "1").iterdir())) == 5


def test_seed_and_anchor_change_the_bytes_an_equivalent_anchor_does_not() -> None:
    base = _built("license_limit")
    assert (
        _built("license_limit", seed=2).artifacts["messages.log"] != base.artifacts["messages.log"]
    )
    shifted = bundle.build(bundle.Spec("license_limit", 1, datetime.fromisoformat(
        "2026-01-01T02:00:00+02:00")))  # fmt: skip
    assert shifted.artifacts == base.artifacts


@pytest.mark.parametrize("variant", [None, "rotation"])
def test_manifest_lists_every_artifact_with_its_size_and_sha256(variant: str | None) -> None:
    b = _built("lock_table_full", variant)
    manifest = _json(b, "manifest.json")
    listed = {a["name"]: a for a in manifest["artifacts"]}
    assert set(listed) == set(b.artifacts) - {"manifest.json"}
    for name, data in b.artifacts.items():
        if name != "manifest.json":
            assert listed[name] == {"name": name, "size": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
    assert manifest["scenario"] == "lock_table_full"
    assert manifest["variant"] == variant
    assert (manifest["seed"], manifest["anchor"]) == (1, "2026-01-01T00:00:00.000Z")
    assert manifest["generator"]["version"] == __import__("irisd").__version__
    assert manifest["volatile_fields"] == []


# -- the answer key agrees with irisd's own parser ---------------------------------------------


@pytest.mark.parametrize("name", FAILING)
def test_every_entry_parses_and_the_primary_classifies_to_the_root_cause(name: str) -> None:
    b = _built(name)
    truth = _json(b, "ground_truth.json")
    entries = _entries(b, "messages.log")
    primary = truth["primary"]
    assert entries[primary["offset"]].classification.code == truth["root_cause"]["code"]
    assert truth["root_cause"]["code"] == scenarios.SCENARIOS[name].code
    line, text = _line_at(b, "messages.log", primary["offset"])
    assert line == primary["line"]
    assert text.endswith(primary["text"])
    incident = truth["incidents"][0]
    assert incident["primary"] == primary
    for member in incident["members"]:
        assert entries[member["offset"]].classification.code == member["code"]
    assert {m["code"] for m in incident["members"]} == set(truth["symptom_codes"])


def test_noise_stays_out_of_the_incident() -> None:
    b = _built("lock_table_full")
    members = {m["offset"] for m in _json(b, "ground_truth.json")["incidents"][0]["members"]}
    entries = _entries(b, "messages.log")
    noise = [o for o, c in entries.items() if "DBLatency" in c.entry.text]  # type: ignore[union-attr]
    expansions = [o for o, c in entries.items() if c.classification.code == "database.expansion"]
    assert expansions
    assert not members & {*noise, *expansions}


def test_normal_load_expects_no_incident() -> None:
    truth = _json(_built("normal_load"), "ground_truth.json")
    assert truth["incident_expected"] is False
    assert (truth["primary"], truth["incidents"], truth["remediation"]) == (None, [], None)


def test_remediation_current_values_match_the_bundled_cpf_and_host() -> None:
    lock = _built("lock_table_full")
    doc = cpf.parse(lock.artifacts["iris.cpf"].decode())
    step = _json(lock, "ground_truth.json")["remediation"]["steps"][0]
    assert step == {"kind": "cpf", "section": "config", "parameter": "locksiz",
                    "current": doc.get("config", "locksiz"), "value": "67108864",
                    "takes_effect": "at once"}  # fmt: skip
    huge = _built("hugepages_fallback")
    fix = _json(huge, "ground_truth.json")["remediation"]
    assert fix["requires_restart"] is True
    kernel = _json(huge, "host.json")["kernel"]
    assert fix["steps"][0] == {"kind": "sysctl", "key": "vm.nr_hugepages", "value": "1500",
                               "current": kernel["vm.nr_hugepages"]}  # fmt: skip
    assert {"kernel.shmmax", "kernel.shmall", "kernel.sem"} <= set(kernel)


def test_alerts_log_is_every_severity_2_entry_and_metrics_move_with_the_scenario() -> None:
    b = _built("gmheap_exhausted")
    severe = [line for line in b.artifacts["messages.log"].decode().splitlines()
              if line[:1].isdigit() and line.split(" ", 3)[2] in ("2", "3")]  # fmt: skip
    alerts = [
        line for line in b.artifacts["alerts.log"].decode().splitlines() if line[:1].isdigit()
    ]
    assert alerts == severe
    heap = [v for name, _, v, _ in _samples(b) if name == "iris_smh_percent_full"]
    assert heap[0] < 50
    assert heap[-1] == 100


def test_threshold_is_carried_into_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "b"
    args = ["bundle", "--scenario", "journal_full", "--seed", "1", "--anchor", ANCHOR, "--out",
            str(out), "--threshold", "0.85"]  # fmt: skip
    assert main(args) == 0
    assert (
        json.loads((out / "journal_full/ground_truth.json").read_text())["pass_threshold"] == 0.85
    )


# -- variants ----------------------------------------------------------------------------------


def test_clock_skew_shifts_alerts_and_metrics_by_the_stated_offset() -> None:
    base, skewed = _built("ecp_connection_lost"), _built("ecp_connection_lost", "clock-skew")
    details = _json(skewed, "ground_truth.json")["variant_details"]
    offset = details["offset_ms"]
    assert abs(offset) >= 30_000
    assert skewed.artifacts["messages.log"] == base.artifacts["messages.log"]
    shift = timedelta(milliseconds=offset)
    for (was, text), (now, bent_text) in zip(_alert_lines(base), _alert_lines(skewed), strict=True):
        assert text == bent_text
        assert now - was == shift
    for plain, bent in zip(_samples(base), _samples(skewed), strict=True):
        assert plain[:3] == bent[:3]
        assert round((bent[3] - plain[3]) * 1000) == offset


def _alert_lines(b: bundle.Bundle) -> list[tuple[datetime, str]]:
    lines = [x for x in b.artifacts["alerts.log"].decode().splitlines() if x[:1].isdigit()]
    return [(datetime.strptime(x[:21] + "000", "%m/%d/%y-%H:%M:%S:%f"), x[22:]) for x in lines]


def test_partial_outage_leaves_the_stated_gap_in_metrics() -> None:
    base, gapped = _built("database_full"), _built("database_full", "partial-outage")
    details = _json(gapped, "ground_truth.json")["variant_details"]
    start, until = (datetime.fromisoformat(details[k]).timestamp()
                    for k in ("missing_from", "missing_until"))  # fmt: skip
    before = sorted({s[3] for s in _samples(base)})
    after = sorted({s[3] for s in _samples(gapped)})
    missing = [t for t in before if t not in after]
    assert len(missing) == details["missing_scrapes"] >= 4
    assert all(start <= t < until for t in missing)
    assert after[0] < start
    assert after[-1] >= until
    assert gapped.artifacts["messages.log"] == base.artifacts["messages.log"]


def test_retry_storm_repeats_the_failing_entry_with_the_repeated_suffix() -> None:
    b = _built("write_daemon_stalled", "retry-storm")
    truth = _json(b, "ground_truth.json")
    entries = _entries(b, "messages.log")
    members = {m["offset"] for m in truth["incidents"][0]["members"]}
    storms = truth["variant_details"]["storms"]
    assert len(storms) >= 2
    for storm in storms:
        first = entries[storm["first"]["offset"]].entry
        summary = entries[storm["summary"]["offset"]].entry
        assert isinstance(first, LogEntry)
        assert isinstance(summary, LogEntry)
        assert summary.repeat == storm["repeated"]
        assert summary.text == first.text
        raw = b.artifacts["messages.log"][summary.offset : summary.end].decode()
        assert raw.endswith(f"...(repeated {storm['repeated']} times)\n")
        assert len(storm["copies"]) >= 3
        for ref in (storm["first"], *storm["copies"], storm["summary"]):
            assert ref["offset"] in members
            assert entries[ref["offset"]].classification.code == "writedaemon.paused"
        assert storm["occurrences"] == 1 + len(storm["copies"]) + storm["repeated"]


def test_rotation_rolls_messages_log_in_the_middle_of_the_incident() -> None:
    base, rolled = _built("process_error_storm"), _built("process_error_storm", "rotation")
    details = _json(rolled, "ground_truth.json")["variant_details"]
    old = details["old_file"]
    assert old == "messages.old_" + details["rolled_at"][:10].replace("-", "")
    assert (
        rolled.artifacts[old] + rolled.artifacts["messages.log"] == base.artifacts["messages.log"]
    )
    assert details["first_in_new_file"] == {"file": "messages.log", "offset": 0, "line": 1}
    members = _json(rolled, "ground_truth.json")["incidents"][0]["members"]
    assert {m["file"] for m in members} == {old, "messages.log"}
    files = {old: _entries(rolled, old), "messages.log": _entries(rolled, "messages.log")}
    for m in members:
        assert files[m["file"]][m["offset"]].classification.code == m["code"]


def test_variants_skip_what_cannot_storm_and_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bundle", "--scenario", "normal_load", "--variants", "--seed", "1", "--anchor", ANCHOR]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    progress = capsys.readouterr().err.splitlines()
    assert progress[3] == (
        "[4/5] normal_load-retry-storm ... skipped: normal_load has no failing operation to repeat"
    )
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "normal_load", "normal_load-clock-skew", "normal_load-partial-outage",
        "normal_load-rotation",
    ]  # fmt: skip


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--scenario", "nope"], "--scenario"),
        (["--scenario", "lock_table_full", "--variant", "sideways"], "--variant"),
        (["--scenario", "normal_load", "--variant", "retry-storm"], "--variant"),
        (["--scenario", "hugepages_fallback", "--variant", "retry-storm"], "--variant"),
        (["--all", "--anchor", "yesterday"], "--anchor"),
        (["--all", "--anchor", "1999-12-31T23:00:00Z"], "--anchor"),
        (["--all", "--threshold", "1.5"], "--threshold"),
        (["--all", "--seed", "x"], "--seed"),
    ],
    ids=[
        "scenario",
        "variant",
        "no-failure",
        "start-up-only",
        "anchor",
        "year",
        "threshold",
        "seed",
    ],
)
def test_bad_arguments_are_one_line_exit_64_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], flag: str
) -> None:
    out = tmp_path / "new" / "out"
    full = ["bundle", "--seed", "1", "--anchor", ANCHOR, "--out", str(out), *args]
    assert main(full) == 64
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert flag in err
    assert not (tmp_path / "new").exists()


def test_unusable_output_directories_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_text("x")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out in (full, a_file, a_file / "below", Path("/proc/irisd-bundle-test")):
        args = ["bundle", "--scenario", "normal_load", "--seed", "1", "--anchor", ANCHOR]
        assert main([*args, "--out", str(out)]) == 64, out
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "--out" in err
    assert [p.name for p in full.iterdir()] == ["keep"]
    assert a_file.read_text() == "x"


def test_a_failed_write_leaves_no_partial_bundle_and_no_created_directory(tmp_path: Path) -> None:
    out = Output.prepare(tmp_path / "made" / "out")
    broken = bundle.Bundle("x", {"ok.txt": b"1", "missing-dir/no.txt": b"2"})
    with pytest.raises(EmulatorError, match="writing x failed"):
        out.write(broken)
    assert list((tmp_path / "made" / "out").iterdir()) == []
    out.abandon()
    assert not (tmp_path / "made").exists()


def test_the_real_process_exits_64_on_bad_input(tmp_path: Path) -> None:
    done = _run(["--scenario", "nope", "--seed", "1", "--anchor", ANCHOR, "--out",
                 str(tmp_path / "o")], "0")  # fmt: skip
    assert done.returncode == 64
    assert done.stderr == (f"irisd: --scenario 'nope': unknown; known: {', '.join(NAMES)}\n")
    assert not (tmp_path / "o").exists()
