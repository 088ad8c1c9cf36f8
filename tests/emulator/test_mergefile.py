"""`iris merge` on the emulated instance: `[Actions]` are carried out from one decision, and a
merge file the emulator cannot carry out whole is refused, naming the line and the property,
with nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from irisd.core import cpf
from irisd.emulator import control, files
from irisd.emulator.layout import cpf_template, init_instance, render_cpf
from irisd.emulator.mergefile import MergePlan, MergeRefused, database_limits, plan_merge
from irisd.emulator.params import known_parameters

KNOWN = known_parameters(cpf.parse(cpf_template()))
BASE = cpf.parse(render_cpf("/iris/", 1972, 52773))


def _plan(text: str) -> MergePlan | MergeRefused:
    return plan_merge(BASE, BASE, cpf.parse(text), known=KNOWN)


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("ModifyDatabase:Name=USER,MaxSize=abc", "MaxSize 'abc' is not a whole number of MB"),
        ("ModifyDatabase:MaxSize=0", "Name is required"),
        ("CreateDatabase:Name=APP,Directory=/data/app", "not supported"),
        ("Frobnicate", "not supported"),
    ],
    ids=["max-size-not-a-number", "no-name", "unsupported", "no-properties"],
)
def test_an_action_the_emulator_cannot_carry_out_refuses_the_merge(line: str, named: str) -> None:
    plan = _plan(f"[Actions]\n{line}\n")
    assert isinstance(plan, MergeRefused)
    (problem,) = plan.problems
    assert problem.line == 2
    assert named in problem.message
    assert "at line 2" in problem.message


def test_database_limits_follow_the_named_database() -> None:
    plan = _plan("[Actions]\nModifyDatabase:Name=user,MaxSize=0\nModifyDatabaseFile:Name=APP\n")
    assert isinstance(plan, MergePlan)
    assert database_limits(plan.actions, {"USER": 1024, "DATA": 50}) == {"USER": 0, "DATA": 50}


def test_a_refused_merge_into_a_down_instance_changes_nothing(tmp_path: Path) -> None:
    paths = init_instance(tmp_path / "iris")
    control.arm(paths.root, "database_full")
    before = (paths.cpf.read_bytes(), files.load_state(paths))
    merge = tmp_path / "bad.merge"
    merge.write_text("[config]\nlocksiz=67108864\n[Actions]\nModifyDatabase:Name=USER,MaxSize=x\n")
    result = control.merge(paths.root, merge)
    assert result["ok"] is False
    assert result["problems"] == [
        "[Actions] ModifyDatabase at line 4: MaxSize 'x' is not a whole number of MB"
    ]
    assert (paths.cpf.read_bytes(), files.load_state(paths)) == before
