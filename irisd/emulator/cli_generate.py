"""`irisd generate` and `irisd bundle` (registered by irisd.emulator.cli)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def add_generate_commands(sub: "Sub") -> None:
    """Registered once generation lands; nothing yet."""
