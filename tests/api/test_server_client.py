"""The real server on loopback TCP and on a unix socket, spoken to by the real client."""

from __future__ import annotations

import asyncio
import socket
import stat
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest
from api_fakes import NOW, TOKEN, FakeServices, sample_rows

from irisd.api.app import make_app
from irisd.api.client import ApiClient
from irisd.api.server import ApiServer, start_server
from irisd.config import parse_listen
from irisd.errors import ApiError, AuthError, StateError


def _app(services: FakeServices | None = None) -> object:
    return make_app(services or FakeServices(sample_rows()), token=TOKEN, clock=lambda: NOW)


@pytest.fixture
async def tcp_server() -> AsyncIterator[ApiServer]:
    async with await start_server(_app(), ("127.0.0.1", 0)) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    # AF_UNIX paths are limited to ~108 bytes; pytest's tmp_path can be longer than that.
    short = Path("/tmp") / f"irisd-test-{tmp_path.name[-20:]}"
    short.mkdir(exist_ok=True)
    yield short / "api.sock"
    for child in short.iterdir():
        child.unlink()
    short.rmdir()


async def test_loopback_server_and_client_round_trip(tcp_server: ApiServer) -> None:
    address = parse_listen(tcp_server.listen)
    assert isinstance(address, tuple)
    assert address[0] == "127.0.0.1"
    assert address[1] > 0
    async with ApiClient(address, TOKEN) as api:
        assert (await api.health())["status"] == "ok"
        assert (await api.status())["state"] == "tailing"
        page = await api.events([("code", "lock.*"), ("limit", "2")])
        assert [e["code"] for e in page["events"]] == ["lock.table_full", "lock.upload"]  # type: ignore[index, union-attr]
        assert page["next"]
        assert "irisd_lines_total 42" in await api.metrics()
        assert (await api.openapi())["openapi"] == "3.1.0"


async def test_ipv6_loopback(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        server = await start_server(_app(), ("::1", 0))  # type: ignore[arg-type]
    except StateError:
        pytest.skip("::1 not configured")
    async with server:
        assert server.listen.startswith("[::1]:")
        async with ApiClient(parse_listen(server.listen), TOKEN) as api:
            assert (await api.health())["status"] == "ok"


async def test_unix_socket_is_0600_and_removed_on_close(sock_path: Path) -> None:
    server = await start_server(_app(), sock_path)  # type: ignore[arg-type]
    assert server.listen == f"unix:{sock_path}"
    assert stat.S_ISSOCK(_mode(sock_path))
    assert stat.S_IMODE(_mode(sock_path)) == 0o600
    async with ApiClient(sock_path, TOKEN) as api:
        assert (await api.status())["tail"] == {"lag_bytes": 0, "offset": 1234}
    await server.close()
    assert not _exists(sock_path)


async def test_stale_socket_file_is_replaced(sock_path: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()  # bound, never listened, now closed: what a killed daemon leaves
    assert _exists(sock_path)
    server = await start_server(_app(), sock_path)  # type: ignore[arg-type]
    async with server, ApiClient(sock_path, TOKEN) as api:
        assert (await api.health())["status"] == "ok"


async def test_a_live_socket_is_not_stolen(sock_path: Path) -> None:
    async with await start_server(_app(), sock_path):  # type: ignore[arg-type]
        with pytest.raises(StateError, match="in use"):
            await start_server(_app(), sock_path)  # type: ignore[arg-type]
        assert _exists(sock_path)  # the first server keeps its socket


async def test_a_regular_file_in_the_way_is_left_alone(sock_path: Path) -> None:
    _write(sock_path, "precious")
    with pytest.raises(StateError, match="not a socket"):
        await start_server(_app(), sock_path)  # type: ignore[arg-type]
    assert _read(sock_path) == "precious"


async def test_port_in_use_is_a_state_error_naming_it(tcp_server: ApiServer) -> None:
    host, port = parse_listen(tcp_server.listen)  # type: ignore[misc]
    with pytest.raises(StateError, match=f"127.0.0.1:{port}"):
        await start_server(_app(), (host, port))  # type: ignore[arg-type]


async def test_wrong_token_is_auth_error(tcp_server: ApiServer) -> None:
    async with ApiClient(parse_listen(tcp_server.listen), "wrong-token-xxxxxxxx") as api:
        with pytest.raises(AuthError) as caught:
            await api.status()
    assert caught.value.status == 401
    assert caught.value.exit_code == 77


async def test_bad_parameter_is_api_error_with_field_and_reason(tcp_server: ApiServer) -> None:
    async with ApiClient(parse_listen(tcp_server.listen), TOKEN) as api:
        with pytest.raises(ApiError, match="400: since: needs a zone") as caught:
            await api.events([("since", "2026-03-01T00:00:00")])
    assert caught.value.status == 400


async def test_nothing_listening_is_api_error(tcp_server: ApiServer) -> None:
    address = parse_listen(tcp_server.listen)
    await tcp_server.close()
    async with ApiClient(address, TOKEN) as api:
        with pytest.raises(
            ApiError, match=r"cannot reach the irisd API at 127\.0\.0\.1:"
        ) as caught:
            await api.health()
    assert not isinstance(caught.value, AuthError)


async def test_missing_unix_socket_is_api_error(sock_path: Path) -> None:
    async with ApiClient(sock_path, TOKEN) as api:
        with pytest.raises(ApiError, match=f"cannot reach the irisd API at unix:{sock_path}"):
            await api.health()


class _Stuck(FakeServices):
    """A daemon whose status answers only when the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def status(self) -> Mapping[str, object]:
        self.entered.set()
        await self.release.wait()
        return {"state": "late"}


async def test_a_server_that_does_not_answer_is_a_timeout(sock_path: Path) -> None:
    stuck = _Stuck()
    server = await start_server(_app(stuck), sock_path, shutdown_timeout=1)  # type: ignore[arg-type]
    try:
        async with ApiClient(sock_path, TOKEN, timeout=0.2) as api:
            with pytest.raises(ApiError, match=r"did not answer in 0\.2s"):
                await api.status()
    finally:
        stuck.release.set()
        await server.close()


async def test_close_lets_a_request_in_flight_finish(sock_path: Path) -> None:
    stuck = _Stuck()
    server = await start_server(_app(stuck), sock_path)  # type: ignore[arg-type]
    async with ApiClient(sock_path, TOKEN) as api:
        request = asyncio.create_task(api.status())
        await stuck.entered.wait()
        closing = asyncio.create_task(server.close())
        await asyncio.sleep(0)  # let close() begin before the answer is released
        stuck.release.set()
        assert await request == {"state": "late"}
        await closing
    assert not _exists(sock_path)


def _exists(path: Path) -> bool:
    return path.exists()


def _mode(path: Path) -> int:
    return path.stat().st_mode


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _read(path: Path) -> str:
    return path.read_text()
