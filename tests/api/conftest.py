"""Fixtures: the fake services, the app built on them, and an aiohttp test client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from api_fakes import NOW, TOKEN, FakeServices, sample_rows

from irisd.api.app import make_app


@pytest.fixture
def services() -> FakeServices:
    return FakeServices(sample_rows())


@pytest.fixture
def app(services: FakeServices) -> web.Application:
    return make_app(services, token=TOKEN, clock=lambda: NOW)


ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, app: web.Application
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(app)
