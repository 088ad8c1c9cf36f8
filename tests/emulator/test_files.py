"""The emulator's atomic write: the new text whole, or the old file and no temp file left."""

from __future__ import annotations

from pathlib import Path

import pytest

from irisd.emulator.files import atomic_write


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "iris.cpf"
    target.write_text("old\n")
    atomic_write(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["iris.cpf"]


def test_a_failed_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # a directory cannot be replaced by a file
    with pytest.raises(IsADirectoryError):
        atomic_write(target, "text\n")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
