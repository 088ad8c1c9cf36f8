"""Logging through a real unix datagram socket owned by the test, parsed as journald would."""

from __future__ import annotations

import array
import fcntl
import io
import json
import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from irisd.core.redact import REDACTED, Redactor
from irisd.shell.journal import (
    HumanFormatter,
    JsonFormatter,
    PrefixFormatter,
    choose_format,
    encode_field,
    setup_logging,
    under_journal,
)

Entry = dict[str, bytes]


class FakeJournald:
    """A datagram socket bound where journald's would be; decodes what arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(5)
        self.seals: list[int] = []

    def receive(self) -> tuple[bytes, Entry]:
        data, ancdata, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(4))
        for level, kind, payload in ancdata:
            assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
            assert data == b""  # the memfd form carries nothing but the descriptor
            (fd,) = array.array("i", payload[:4])
            self.seals.append(fcntl.fcntl(fd, fcntl.F_GET_SEALS))
            with os.fdopen(fd, "rb") as memfd:
                memfd.seek(0)  # the sender's writes moved the shared offset; journald mmaps
                data = memfd.read()
        return data, parse_native(data)

    def close(self) -> None:
        self.sock.close()


def parse_native(data: bytes) -> Entry:
    """journald's native format: KEY=value\\n, or KEY\\n<u64 LE length><value>\\n."""
    fields: Entry = {}
    at = 0
    while at < len(data):
        newline = data.index(b"\n", at)
        equals = data.find(b"=", at, newline)
        if equals >= 0:
            fields[data[at:equals].decode()] = data[equals + 1 : newline]
            at = newline + 1
            continue
        (size,) = struct.unpack("<Q", data[newline + 1 : newline + 9])
        fields[data[at:newline].decode()] = data[newline + 9 : newline + 9 + size]
        assert data[newline + 9 + size : newline + 10 + size] == b"\n"
        at = newline + 10 + size
    return fields


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[FakeJournald]:
    server = FakeJournald(tmp_path / "journal.sock")
    yield server
    server.close()


@pytest.fixture
def logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    log = logging.getLogger(f"irisd.test.{request.node.name}")
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def journal_logger(
    logger: logging.Logger, path: Path, redactor: Redactor | None = None
) -> io.StringIO:
    stream = io.StringIO()
    setup_logging(
        "debug", "journal", redactor=redactor, stream=stream, journal_socket=path, logger=logger
    )
    return stream


def test_entry_carries_standard_and_irisd_fields(
    journald: FakeJournald, logger: logging.Logger
) -> None:
    journal_logger(logger, journald.path)
    extra = {
        "irisd_code": "tail.rotated",
        "event_id": "ev-1",
        "irisd_trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "command_id": "cmd-9",
        "irisd_offset": 1234,
    }
    logger.info("rotated %s", "messages.log", extra=extra)
    _, entry = journald.receive()
    assert entry["MESSAGE"] == b"rotated messages.log"
    assert entry["PRIORITY"] == b"6"
    assert entry["SYSLOG_IDENTIFIER"] == b"irisd"
    assert entry["CODE_FILE"] == __file__.encode()
    assert int(entry["CODE_LINE"]) > 0
    assert entry["CODE_FUNC"] == b"test_entry_carries_standard_and_irisd_fields"
    assert entry["LOGGER"] == logger.name.encode()
    assert entry["IRISD_CODE"] == b"tail.rotated"
    assert entry["IRISD_EVENT_ID"] == b"ev-1"
    assert entry["IRISD_TRACE_ID"] == b"4bf92f3577b34da6a3ce929d0e0e4736"
    assert entry["IRISD_COMMAND_ID"] == b"cmd-9"
    assert entry["IRISD_OFFSET"] == b"1234"


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.DEBUG, b"7"),
        (logging.INFO, b"6"),
        (logging.WARNING, b"4"),
        (logging.ERROR, b"3"),
        (logging.CRITICAL, b"2"),
    ],
)
def test_priorities_are_syslog_levels(
    journald: FakeJournald, logger: logging.Logger, level: int, expected: bytes
) -> None:
    journal_logger(logger, journald.path)
    logger.log(level, "x")
    assert journald.receive()[1]["PRIORITY"] == expected


def test_multiline_value_uses_binary_safe_form(
    journald: FakeJournald, logger: logging.Logger
) -> None:
    journal_logger(logger, journald.path)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed\nsecond line")
    raw, entry = journald.receive()
    message = entry["MESSAGE"].decode()
    assert message.startswith("failed\nsecond line\nTraceback (most recent call last):")
    assert "RuntimeError: boom" in message
    assert b"MESSAGE\n" + struct.pack("<Q", len(entry["MESSAGE"])) in raw


def test_oversized_entry_goes_through_sealed_memfd(
    journald: FakeJournald, logger: logging.Logger
) -> None:
    journal_logger(logger, journald.path)
    big = "x" * (2 * 1024 * 1024)  # far above a unix datagram's default limit
    logger.warning(big, extra={"irisd_code": "test.big"})
    _, entry = journald.receive()
    assert entry["MESSAGE"] == big.encode()
    assert entry["IRISD_CODE"] == b"test.big"
    (seals,) = journald.seals
    wanted = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
    assert seals & wanted == wanted


def test_secrets_are_redacted_in_journal_fields(
    journald: FakeJournald, logger: logging.Logger
) -> None:
    journal_logger(logger, journald.path, Redactor(["registered-hmac-secret"]))
    logger.info(
        "POST https://u:pw@hook/x?token=abc sig=registered-hmac-secret",
        extra={"irisd_token": "plain-value", "irisd_url": "https://a:b@h/"},
    )
    _, entry = journald.receive()
    message = entry["MESSAGE"].decode()
    for secret in ("pw@", "token=abc", "registered-hmac-secret"):
        assert secret not in message
    assert entry["IRISD_TOKEN"] == REDACTED.encode()
    assert entry["IRISD_URL"] == f"https://a:{REDACTED}@h/".encode()


def test_unreachable_journal_falls_back_to_stderr_without_losing_lines(
    tmp_path: Path, logger: logging.Logger
) -> None:
    stream = journal_logger(logger, tmp_path / "absent.sock")
    logger.error("first", extra={"irisd_code": "journal.error"})
    logger.info("second")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("<4>journal unreachable at ")
    assert lines[0].endswith("code=log.journal_unreachable")
    assert lines[1:] == ["<3>first code=journal.error", "<6>second"]


def test_journal_coming_back_is_used_again(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "late.sock"
    stream = journal_logger(logger, path)
    logger.info("while away")
    server = FakeJournald(path)
    try:
        logger.info("back")
        assert server.receive()[1]["MESSAGE"] == b"back"
    finally:
        server.close()
    assert stream.getvalue().splitlines()[-1] == "<6>while away"


def test_encode_field_forms() -> None:
    assert encode_field("A", "b c") == b"A=b c\n"
    assert encode_field("A", "b\nc") == b"A\n" + struct.pack("<Q", 3) + b"b\nc\n"


def record(msg: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"msg": msg, "levelno": level, "levelname": "X", **extra})
    made.levelname = logging.getLevelName(level)
    return made


def test_prefix_formatter_prefixes_every_line_and_quotes_fields() -> None:
    line = PrefixFormatter(Redactor()).format(
        record("a\nb", logging.ERROR, irisd_code="c.d", irisd_note="two words")
    )
    assert line == '<3>a code=c.d note="two words"\n<3>b'


def test_human_formatter_line() -> None:
    line = HumanFormatter(Redactor()).format(record("hello", trace_id="t1"))
    stamp, level_and_rest = line[:23], line[24:]
    assert stamp[4] == "-"
    assert stamp[19] == "."
    assert level_and_rest == "INFO     hello trace_id=t1"


def test_json_formatter_object() -> None:
    made = record("password=hunter2 ok", logging.WARNING, irisd_code="api.listening")
    body = json.loads(JsonFormatter(Redactor()).format(made))
    assert body["message"] == f"password={REDACTED} ok"
    assert body["level"] == "warning"
    assert body["priority"] == 4
    assert body["code"] == "api.listening"
    assert body["time"].endswith("Z")


def test_under_journal_matches_stderr_device_and_inode(tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as stream:
        stat = os.fstat(stream.fileno())
        assert under_journal({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}, stream)
        assert not under_journal({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino + 1}"}, stream)
        assert not under_journal({"JOURNAL_STREAM": "garbage"}, stream)
        assert not under_journal({}, stream)
    assert not under_journal({"JOURNAL_STREAM": "1:2"}, io.StringIO())


def test_auto_format_choice(tmp_path: Path) -> None:
    master, replica = os.openpty()
    with os.fdopen(replica, "w") as tty, open(tmp_path / "f", "w") as plain:
        stat = os.fstat(plain.fileno())
        journal_env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert choose_format("auto", env={}, stream=tty) == "human"
        assert choose_format("auto", env={}, stream=plain) == "stderr"
        assert choose_format("auto", env=journal_env, stream=plain) == "journal"
        assert choose_format("json", env=journal_env, stream=plain) == "json"
    os.close(master)


def test_setup_twice_replaces_the_handler(logger: logging.Logger) -> None:
    stream = io.StringIO()
    setup_logging("info", "stderr", stream=stream, logger=logger)
    setup_logging("warning", "json", stream=stream, logger=logger)
    assert [h.get_name() for h in logger.handlers].count("irisd") == 1
    logger.info("hidden")
    logger.warning("shown")
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "shown"
