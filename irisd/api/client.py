"""The API client the CLI uses: aiohttp over TCP or a unix socket, errors from `irisd.errors`.

Every failure becomes one of two errors, worded for an operator: `AuthError` when the API says
401 (wrong or missing token), `ApiError` for everything else (nothing listening, no answer
within the timeout, a 4xx/5xx with the server's field and reason, a body that is not JSON).
aiohttp's own exceptions never leave this module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

import aiohttp

from irisd.config import Address, format_listen
from irisd.errors import ApiError, AuthError

DEFAULT_TIMEOUT: Final = 5.0


class ApiClient:
    """`async with ApiClient(address, token) as api: await api.status()`."""

    def __init__(self, address: Address, token: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._session: aiohttp.ClientSession | None = None

    @property
    def where(self) -> str:
        return format_listen(self.address)

    async def health(self) -> dict[str, object]:
        return _object(await self._get_json("/health"))

    async def status(self) -> dict[str, object]:
        return _object(await self._get_json("/status"))

    async def events(self, params: Sequence[tuple[str, str]] = ()) -> dict[str, object]:
        """One page: `{"events": [...], "next": cursor | None}`."""
        return _object(await self._get_json("/events", params))

    async def metrics(self) -> str:
        return (await self._get("/metrics")).decode()

    async def openapi(self) -> dict[str, object]:
        return _object(await self._get_json("/openapi.json"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _get_json(self, path: str, params: Sequence[tuple[str, str]] = ()) -> object:
        body = await self._get(path, params)
        try:
            return json.loads(body)
        except ValueError:
            raise ApiError(f"the irisd API at {self.where} sent {path} that is not JSON") from None

    async def _get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> bytes:
        session = self._session_open()
        try:
            async with session.get(path, params=list(params), headers=self._headers) as resp:
                body = await resp.read()
                status = resp.status
        except TimeoutError:
            msg = f"the irisd API at {self.where} did not answer in {self.timeout:g}s"
            raise ApiError(msg) from None
        except aiohttp.ClientError as exc:
            raise ApiError(f"cannot reach the irisd API at {self.where}: {_why(exc)}") from None
        if status >= 400:
            raise _status_error(status, body)
        return body

    def _session_open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = _session(self.address, self.timeout)
        return self._session


def _session(address: Address, timeout: float) -> aiohttp.ClientSession:
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    if isinstance(address, Path):
        connector = aiohttp.UnixConnector(path=str(address))
        return aiohttp.ClientSession(
            "http://localhost", connector=connector, timeout=client_timeout
        )
    return aiohttp.ClientSession(f"http://{format_listen(address)}", timeout=client_timeout)


def _why(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.strerror:
        return str(exc.os_error.strerror).lower()
    return str(exc) or type(exc).__name__


def _status_error(status: int, body: bytes) -> ApiError:
    field, reason = _error_detail(body)
    where = f"{field}: {reason}" if field else reason
    if status == 401:
        return AuthError(f"the irisd API refused the token ({where})", status=401)
    return ApiError(f"the irisd API said {status}: {where}", status=status)


def _error_detail(body: bytes) -> tuple[str | None, str]:
    """The server's `{"error": {"field", "reason"}}`, or the start of whatever it sent."""
    try:
        error = json.loads(body)["error"]
        field, reason = error.get("field"), str(error["reason"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, body[:200].decode(errors="replace").strip() or "no detail"
    return (None if field is None else str(field)), reason


def _object(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ApiError("the irisd API sent JSON that is not an object")
    return value
