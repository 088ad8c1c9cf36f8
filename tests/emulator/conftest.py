"""Fixtures shared by the emulator's command-line tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import pytest

from irisd.cli import main

Cli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`irisd.cli.main` in a thread of this process, so a loopback server in the test keeps
    serving (and openai is imported once per session, not per run). `env`, when given,
    replaces IRISD_* and OPENAI_*; returns (exit code, stdout, stderr)."""

    async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        if env is not None:
            for name in [k for k in os.environ if k.startswith(("IRISD_", "OPENAI_"))]:
                monkeypatch.delenv(name)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
