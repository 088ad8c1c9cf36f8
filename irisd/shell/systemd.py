"""sd_notify(3) over `$NOTIFY_SOCKET`, with a plain datagram socket so what is sent is obvious.

systemd reads `KEY=value` lines from one datagram: READY=1 once start-up is done, STATUS= for
`systemctl status`, WATCHDOG=1 as the keep-alive (within `WatchdogSec=`), STOPPING=1 on the way
out, RELOADING=1 with MONOTONIC_USEC= when a reload begins (READY=1 ends it).

Without `$NOTIFY_SOCKET` (not under systemd, or `Type=` is not notify) every call is a no-op that
returns False. A send never raises: a vanished socket must not take the daemon down with it; the
call returns False and the daemon carries on. The socket is non-blocking for the same reason.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Final

MAX_STATUS: Final = 1024  # systemctl shows one line; keep the datagram small


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def socket_address(value: str) -> str | None:
    """`$NOTIFY_SOCKET` → an address for sendto: a path, or "\\0name" for "@name" (abstract)."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # vsock and other forms are not used for services on the host


class Notifier:
    """Tells systemd how the service is doing. Build it with `Notifier.from_env()`."""

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_usec: int | None = None,
        clock: Callable[[], int] = _monotonic_usec,
    ) -> None:
        self.address = address
        self._watchdog_usec = watchdog_usec
        self._clock = clock
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, pid: int | None = None) -> Notifier:
        """Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (the watchdog is ours only if the
        pid is unset or equals `pid`, this process by default)."""
        env = os.environ if env is None else env
        address = socket_address(env.get("NOTIFY_SOCKET", ""))
        return cls(address, watchdog_usec=_watchdog_usec(env, os.getpid() if pid is None else pid))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send `KEY=value` fields in one datagram. True if systemd's socket took it."""
        if self.address is None:
            return False
        payload = "\n".join(fields).encode("utf-8", "replace")
        try:
            self._socket().sendto(payload, self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *self._status_field(status))

    def status(self, text: str) -> bool:
        return self.notify(*self._status_field(text))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *self._status_field(status))

    def reloading(self, status: str | None = None) -> bool:
        """Start of a reload; call `ready()` when it is done."""
        stamp = f"MONOTONIC_USEC={self._clock()}"
        return self.notify("RELOADING=1", stamp, *self._status_field(status))

    def watchdog_interval(self) -> float | None:
        """`WatchdogSec=` in seconds when systemd asked this process for keep-alives, else None.
        Send `watchdog()` at least twice per interval (every half of it is customary)."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 1_000_000

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            self._sock = socket.socket(socket.AF_UNIX, kind)
        return self._sock

    @staticmethod
    def _status_field(text: str | None) -> tuple[str, ...]:
        if text is None:
            return ()
        return ("STATUS=" + " ".join(text.split())[:MAX_STATUS],)  # one line, bounded


def _watchdog_usec(env: Mapping[str, str], pid: int) -> int | None:
    usec, owner = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and (not owner.isdigit() or int(owner) != pid):
        return None  # meant for another process (we were started by a wrapper)
    return int(usec)
