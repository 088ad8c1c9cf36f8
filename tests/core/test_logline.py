"""Header parsing, IRIS's repeat suffix, the WIJ recovery banner, unparsed reasons, and local time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irisd.core.lines import LineAssembler, RawEntry, assemble
from irisd.core.logline import LocalClock, header_tail, parse, parse_header, parse_tail
from irisd.core.model import LogEntry, Severity, Unparsed

HELSINKI = ZoneInfo("Europe/Helsinki")


def one(text: str, tz: ZoneInfo | None = None) -> LogEntry | Unparsed:
    [entry] = assemble(text.encode())
    return parse(entry, LocalClock(tz or UTC))


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("line", "severity", "category", "message"),
    [
        pytest.param(
            "11/14/25-09:45:55:740 (50778) 0 [WriteDaemon.Started] Write daemon started.",
            Severity.INFO,
            "WriteDaemon.Started",
            "Write daemon started.",
            id="dotted-category",
        ),
        pytest.param(
            "01/28/24-00:00:11:859 (6552) 2 [SYSTEM MONITOR] ECPClient Alert: state is Trouble",
            Severity.SEVERE,
            "SYSTEM MONITOR",
            "ECPClient Alert: state is Trouble",
            id="category-with-spaces",
        ),
        pytest.param(
            "11/15/25-13:20:01:117 (75110) 1 [Utility.Event] [SYSTEM MONITOR] DBLatency(/database/"
            "forms/) Warning: DBLatency = 1207.478 ( Warnvalue is 1000).",
            Severity.WARNING,
            "Utility.Event",
            "[SYSTEM MONITOR] DBLatency(/database/forms/) Warning: DBLatency = 1207.478"
            " ( Warnvalue is 1000).",
            id="second-bracketed-tag-stays-in-the-message",
        ),
        pytest.param(
            "03/07/23-10:15:02:001 (1234) 3 Unable to allocate shared memory",
            Severity.FATAL,
            None,
            "Unable to allocate shared memory",
            id="no-category",
        ),
        pytest.param(
            "11/14/25-09:45:55:740 (50778) 0 [Generic.Event]",
            Severity.INFO,
            "Generic.Event",
            "",
            id="empty-message-no-trailing-space",
        ),
        pytest.param(
            "11/14/25-09:45:55.740 (50778) 1 [Generic.Event] period before milliseconds",
            Severity.WARNING,
            "Generic.Event",
            "period before milliseconds",
            id="period-before-milliseconds",
        ),
    ],
)
def test_header_forms(line: str, severity: Severity, category: str | None, message: str) -> None:
    entry = one(line + "\n")
    assert isinstance(entry, LogEntry)
    assert (entry.severity, entry.category, entry.text, entry.repeat) == (
        severity,
        category,
        message,
        1,
    )
    assert entry.pid == int(line.split("(")[1].split(")", maxsplit=1)[0])


def test_empty_header_message_takes_the_banner_that_follows() -> None:
    entry = one(
        "11/14/25-09:45:55:730 (50745) 0 [Generic.Event] \n"
        "Startup of InterSystems IRIS [IRIS for UNIX (Red Hat Enterprise Linux 9 for x86-64) 2025.2"
        " (Build 227U) Thu Jul 10 2025 11:11:10 EDT]\n"
        "\tin ../bin/\n"
        "  System Initialized.\n"
    )
    assert isinstance(entry, LogEntry)
    assert entry.category == "Generic.Event"
    assert entry.text.startswith("Startup of InterSystems IRIS [IRIS for UNIX")
    assert entry.text.endswith("\tin ../bin/\n  System Initialized.")
    assert entry.lines == 4


def test_timestamp_milliseconds_and_offsets_are_kept() -> None:
    text = "11/14/25-09:46:09:118 (51655) 0 [Generic.Event] x\n"
    entry = one(text, HELSINKI)
    assert isinstance(entry, LogEntry)
    # The sample says this local time is "11/14/2025 07:46:09.118 UTC": the host ran in UTC+2.
    assert entry.timestamp == pytest.approx(utc(2025, 11, 14, 7, 46, 9, 118_000))
    assert (entry.offset, entry.end) == (0, len(text))


# -- IRIS's repeat suffix ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "repeat"),
    [
        pytest.param(
            "11/16/25-00:00:00:887 (75110) 1 [Generic.Event] Warning: Alternate and primary journal"
            " directories are the same...(repeated 5 times)\n",
            "Warning: Alternate and primary journal directories are the same",
            5,
            id="on-the-header-line",
        ),
        pytest.param(
            "11/16/25-00:00:00:887 (75110) 1 [Generic.Event] x...(repeated 1 times)\n",
            "x",
            1,
            id="repeated-once",
        ),
        pytest.param(
            "11/20/25-13:27:24:882 (40158) 2 [Generic.Event] INTERSYSTEMS IRIS JOURNALING SYSTEM"
            " MESSAGE\nFailed to lock alternate journal directory /journal/journal2/\n"
            "Journaling started but cannot failover...(repeated 12 times)\n",
            "INTERSYSTEMS IRIS JOURNALING SYSTEM MESSAGE\nFailed to lock alternate journal directory"
            " /journal/journal2/\nJournaling started but cannot failover",
            12,
            id="on-a-continuation-line",
        ),
        pytest.param(
            "11/16/25-00:00:00:887 (75110) 1 [Generic.Event] a...(repeated 3 times) and more\n",
            "a...(repeated 3 times) and more",
            1,
            id="only-as-a-suffix",
        ),
        pytest.param(
            "11/16/25-00:00:00:887 (75110) 1 [Generic.Event] a...(repeated 3 times)\r\n",
            "a",
            3,
            id="crlf",
        ),
    ],
)
def test_repeat_suffix(text: str, message: str, repeat: int) -> None:
    entry = one(text)
    assert isinstance(entry, LogEntry)
    assert (entry.text, entry.repeat) == (message, repeat)


# -- the WIJ recovery block --------------------------------------------------------------------------

RECOVERY = (
    "*** Recovery started at Fri Nov 14 09:46:08 2025\n"
    "     Current default directory: /usr/local/IRIS/mgr\n"
    "Recovering local (/usr/local/IRIS/mgr/IRIS.WIJ) image journal file...\n"
    "Exiting with status 3 (Success)\n"
)


def test_recovery_banner_is_an_entry_without_pid() -> None:
    entry = one(RECOVERY, HELSINKI)
    assert isinstance(entry, LogEntry)
    assert entry.pid is None
    assert entry.severity is Severity.INFO
    assert entry.category is None
    assert entry.text == RECOVERY.rstrip()
    assert entry.timestamp == utc(2025, 11, 14, 7, 46, 8)
    assert entry.lines == 4


def test_recovery_banner_with_a_one_digit_day() -> None:
    entry = one("*** Recovery started at Thu Dec  4 08:34:25 2025\n", UTC)
    assert isinstance(entry, LogEntry)
    assert entry.timestamp == utc(2025, 12, 4, 8, 34, 25)


# -- what does not parse -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("\n", "empty entry", id="blank-line"),
        pytest.param(
            "\tin ../bin/\n",
            "continuation line without a preceding entry",
            id="orphan-continuation",
        ),
        pytest.param(
            "11/14/25-09:45:55:740 pid 0 [Generic.Event] x\n",
            "starts with a timestamp but the rest is not `(pid) severity [category] text`",
            id="no-pid",
        ),
        pytest.param(
            "11/14/25-09:45:55:740 (50778) 7 [Generic.Event] x\n",
            "starts with a timestamp but the rest is not `(pid) severity [category] text`",
            id="severity-out-of-range",
        ),
        pytest.param(
            "02/30/25-09:45:55:740 (50778) 0 [Generic.Event] x\n",
            "timestamp is not a valid date",
            id="february-30",
        ),
        pytest.param(
            "11/14/25-25:45:55:740 (50778) 0 [Generic.Event] x\n",
            "timestamp is not a valid date",
            id="hour-25",
        ),
        pytest.param(
            "*** Recovery started at some point\n",
            "WIJ recovery banner without a readable date",
            id="recovery-banner-without-date",
        ),
        pytest.param(
            "*** Recovery started at Fri Foo 14 09:46:08 2025\n",
            "WIJ recovery banner without a readable date",
            id="recovery-banner-unknown-month",
        ),
        pytest.param(
            "*** Recovery started at Fri Feb 30 09:46:08 2025\n",
            "WIJ recovery banner with an invalid date",
            id="recovery-banner-february-30",
        ),
    ],
)
def test_unparsed_reasons(text: str, reason: str) -> None:
    entry = one(text)
    assert isinstance(entry, Unparsed)
    assert entry.reason == reason
    assert entry.raw == text.rstrip()
    assert (entry.offset, entry.end) == (0, len(text))


def test_parse_header_returns_the_reason_instead_of_raising() -> None:
    assert parse_header("garbage") == "continuation line without a preceding entry"
    header = parse_header("11/14/25-09:45:55:740 (50778) 2 [A B] m...(repeated 4 times)")
    assert not isinstance(header, str)
    assert (header.minute, header.second, header.millisecond) == ("11/14/25-09:45", "55", "740")
    assert (header.pid, header.severity, header.category, header.message, header.repeat) == (
        "50778",
        Severity.SEVERE,
        "A B",
        "m",
        4,
    )


# -- local time and daylight saving time -------------------------------------------------------------


def stamps(clock: LocalClock, times: list[str]) -> list[float | None]:
    return [clock.to_epoch(t[:14], t[15:17], t[18:21]) for t in times]


def test_autumn_repeated_hour_keeps_timestamps_increasing() -> None:
    """Europe/Helsinki, 2025-10-26: 04:00 EEST becomes 03:00 EET, so 03:00-03:59 happens twice."""
    times = [
        "10/26/25-02:59:59:000",
        "10/26/25-03:00:00:000",  # first pass (EEST, UTC+3)
        "10/26/25-03:30:00:000",
        "10/26/25-03:59:59:500",
        "10/26/25-03:00:00:100",  # the clock went back: second pass (EET, UTC+2)
        "10/26/25-03:30:00:000",
        "10/26/25-03:59:59:999",
        "10/26/25-04:00:00:000",
    ]
    got = stamps(LocalClock(HELSINKI), times)
    assert got == [
        utc(2025, 10, 25, 23, 59, 59),
        utc(2025, 10, 26, 0, 0, 0),
        utc(2025, 10, 26, 0, 30, 0),
        utc(2025, 10, 26, 0, 59, 59, 500_000),
        utc(2025, 10, 26, 1, 0, 0, 100_000),
        utc(2025, 10, 26, 1, 30, 0),
        utc(2025, 10, 26, 1, 59, 59, 999_000),
        utc(2025, 10, 26, 2, 0, 0),
    ]
    assert got == sorted(got)  # type: ignore[type-var]


def test_repeated_hour_without_a_step_back_reads_as_the_first_pass() -> None:
    [first] = stamps(LocalClock(HELSINKI), ["10/26/25-03:30:00:000"])
    assert first == utc(2025, 10, 26, 0, 30)


def test_spring_gap_is_jumped_without_a_hole() -> None:
    """Europe/Helsinki, 2025-03-30: 03:00 EET becomes 04:00 EEST; one millisecond apart."""
    got = stamps(LocalClock(HELSINKI), ["03/30/25-02:59:59:999", "03/30/25-04:00:00:000"])
    assert got == [utc(2025, 3, 30, 0, 59, 59, 999_000), utc(2025, 3, 30, 1, 0, 0)]


def test_time_inside_the_spring_gap_still_parses() -> None:
    """IRIS cannot write 03:30 that day; if a clock did, it reads with the offset before the gap."""
    [inside] = stamps(LocalClock(HELSINKI), ["03/30/25-03:30:00:000"])
    assert inside == utc(2025, 3, 30, 1, 30)


def test_whole_entries_across_the_autumn_change_increase() -> None:
    text = "".join(
        f"10/26/25-{t} (1) 0 [Utility.Event] tick\n"
        for t in ("03:58:00:000", "03:59:00:000", "03:00:30:000", "03:01:00:000", "04:00:01:000")
    )
    assembler = LineAssembler()
    clock = LocalClock(HELSINKI)
    parsed = [parse(r, clock) for r in assembler.feed(text.encode()) + assembler.flush()]
    times = [e.timestamp for e in parsed if isinstance(e, LogEntry)]
    assert len(times) == 5
    assert times == sorted(times)
    assert times[2] - times[1] == 90  # 03:59 EEST to 03:00:30 EET is ninety seconds


def test_clock_caches_minutes_without_changing_answers() -> None:
    clock = LocalClock(HELSINKI)
    first = stamps(clock, ["11/14/25-09:46:09:118"])
    again = stamps(clock, ["11/14/25-09:46:10:000"])
    assert again[0] == pytest.approx(first[0] + 0.882)  # type: ignore[operator]


def test_entry_counters_reach_the_parsed_entry() -> None:
    """The RawEntry's counters (cut lines, truncation, decode errors) reach the LogEntry."""
    entry = parse(
        RawEntry(0, 10, "11/14/25-09:45:55:740 (1) 0 x", 300, 100, 5000, True, 2), LocalClock(UTC)
    )
    assert isinstance(entry, LogEntry)
    assert (entry.lines, entry.cut_lines, entry.truncated, entry.decode_errors) == (
        300,
        100,
        True,
        2,
    )


# -- parse_tail: the header's tail read with string operations ---------------------------------------

TAIL_PIECES = ["0", "1", "3", "4", " ", "  ", "[", "]", "[A B]", "[Generic.Event]", "\n", "x",
               "msg", "...(repeated 3 times)", " times)", "\u0664", "\t"]  # fmt: skip


def reference_tail(tail: str) -> tuple[Severity, str | None, str, int] | None:
    header = parse_header("11/14/25-09:45:55:740 (50778) " + tail)
    return None if isinstance(header, str) else header[4:]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(TAIL_PIECES), max_size=8).map("".join))
def test_parse_tail_reads_a_tail_as_parse_header_does(tail: str) -> None:
    assert parse_tail(tail) == reference_tail(tail)


@pytest.mark.parametrize(
    "tail",
    ["", "0", "0 ", "0\n", "0\nbanner", "0 \nbanner", "0 [A]", "0 [A] ", "0 [A]  two spaces",
     "0 [A\nB] x", "0 [unclosed x", "0 []x", "2 [A B] m...(repeated 4 times)", "3 no category",
     "0x", "9 x", "1 [A]\nbanner"],
)  # fmt: skip
def test_parse_tail_edge_forms(tail: str) -> None:
    assert parse_tail(tail) == reference_tail(tail)


def test_parse_tail_agrees_with_parse_header_on_every_entry_of_the_sample() -> None:
    sample = Path(__file__).resolve().parents[2] / "tests/data/messages.log"
    tails = [split[1] for raw in assemble(sample.read_bytes()) if (split := header_tail(raw.text))]
    assert len(tails) > 1000
    assert [parse_tail(t) for t in tails] == [reference_tail(t) for t in tails]
