"""Serve the API on a TCP address (loopback by default) or a unix socket, and stop cleanly.

Theory of operation. `start_server` binds before it returns, so when the daemon says READY the
API already answers, and a bind failure surfaces at start-up as a `StateError` naming the address.
The unix socket is created 0600 from the first instant: the process umask is narrowed around
`bind` (only ever narrowing, so a file another thread creates meanwhile is at most more private).
A socket file left by a dead daemon is removed; one that still accepts connections belongs to a
running daemon and is refused, as is any path that is not a socket. `ApiServer.close` stops
accepting, lets requests in flight finish within `shutdown_timeout`, and removes the socket file
if it is still the one this server created.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiohttp import web

from irisd.config import Address, format_listen
from irisd.errors import StateError

log = logging.getLogger("irisd.api")


@dataclass(slots=True)
class ApiServer:
    """A running API server. `listen` is where it really listens (the port chosen for port 0)."""

    runner: web.AppRunner
    listen: str
    _socket_id: tuple[int, int] | None = None

    async def close(self) -> None:
        await self.runner.cleanup()
        if self._socket_id is not None:
            _remove_if_same(Path(self.listen.removeprefix("unix:")), self._socket_id)

    async def __aenter__(self) -> ApiServer:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def start_server(
    app: web.Application, address: Address, *, shutdown_timeout: float = 5.0
) -> ApiServer:
    """Bind `address` ((host, port) or a unix socket path) and serve `app` on it."""
    sock = _bind_unix(address) if isinstance(address, Path) else _bind_tcp(*address)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    if isinstance(address, Path):
        st = address.stat()
        return ApiServer(runner, format_listen(address), (st.st_dev, st.st_ino))
    host, port = sock.getsockname()[:2]
    return ApiServer(runner, format_listen((host, port)))


def _bind_tcp(host: str, port: int) -> socket.socket:
    if not _is_loopback(host):
        log.warning("api: listening on %s, which is not a loopback address", host)
    try:
        return socket.create_server((host, port), family=_family(host))
    except OSError as exc:
        raise StateError(f"api: cannot listen on {host}:{port}: {exc.strerror}") from exc


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name such as localhost: let the resolver decide
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return infos[0][0]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _bind_unix(path: Path) -> socket.socket:
    _clear_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise StateError(f"api: cannot listen on unix:{path}: {exc.strerror}") from exc
    finally:
        os.umask(old)
    path.chmod(0o600)  # the umask already did it; this also holds under a umask of 0
    sock.listen(128)
    return sock


def _clear_stale(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StateError(f"api: unix:{path} exists and is not a socket; not touching it")
    if _accepts(path):
        raise StateError(f"api: unix:{path} is in use (another irisd running?)")
    log.info("api: removing stale socket %s", path)
    path.unlink(missing_ok=True)


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


def _remove_if_same(path: Path, ident: tuple[int, int]) -> None:
    with contextlib.suppress(FileNotFoundError):
        st = path.lstat()
        if (st.st_dev, st.st_ino) == ident:
            path.unlink()
