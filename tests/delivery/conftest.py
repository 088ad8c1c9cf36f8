"""Fixtures of the delivery tests; the helpers themselves live in `delivery_kit`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from delivery_kit import FastClock, Receiver, receiving

from irisd.shell.outbox import MemoryOutbox


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as rec:
        yield rec


@pytest.fixture
def clock() -> FastClock:
    return FastClock()


@pytest.fixture
def outbox(clock: FastClock) -> MemoryOutbox:
    return MemoryOutbox(clock=clock.time)
