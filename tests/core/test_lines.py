"""The line assembler: bytes in any chunking → the same entries, offsets that tile the input.

The multi-line forms are real text from the 49,449-line IRIS 2025.2 sample (FACTS.md §1.5).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irisd.core.lines import Limits, LineAssembler, RawEntry

SAMPLE = Path(__file__).resolve().parents[2] / "tests/data/messages.log"

H = "11/14/25-09:45:55:730 (50745) 0 [Generic.Event] "
NEXT = "11/14/25-09:45:55:740 (50778) 0 [WriteDaemon.Started] Write daemon started.\n"


def entries(
    data: bytes, limits: Limits | None = None, chunks: Sequence[int] = ()
) -> list[RawEntry]:
    return feed_in_pieces(LineAssembler(limits=limits), data, chunks)


def feed_in_pieces(assembler: LineAssembler, data: bytes, chunks: Sequence[int]) -> list[RawEntry]:
    """Feed `data` in pieces of the given sizes (the rest in one piece), then flush(final=True)."""
    out: list[RawEntry] = []
    pos = 0
    for size in chunks:
        out += assembler.feed(data[pos : pos + size])
        pos += size
    out += assembler.feed(data[pos:])
    return out + assembler.flush(final=True)


def bytewise(data: bytes, limits: Limits | None = None) -> list[RawEntry]:
    return entries(data, limits, [1] * len(data))


def assert_tiles(found: Sequence[RawEntry], data: bytes) -> None:
    """Entry i ends where entry i+1 starts; together they cover every byte of the input."""
    assert found[0].offset == 0
    assert found[-1].end == len(data)
    for before, after in itertools.pairwise(found):
        assert before.end == after.offset
    assert sum(e.end - e.offset for e in found) == len(data)


# -- every multi-line form of FACTS.md §1.5, as IRIS wrote it ----------------------------------------

BANNER = (
    H + "\n"
    "Startup of InterSystems IRIS [IRIS for UNIX (Red Hat Enterprise Linux 9 for x86-64) 2025.2"
    " (Build 227U) Thu Jul 10 2025 11:11:10 EDT]\n"
    "\tin ../bin/\n"
    "\twith mgr: /usr/local/IRIS/mgr\n"
    "\twith wij: /usr/local/IRIS/mgr/IRIS.WIJ\n"
    "\tfrom: /usr/local/IRIS/mgr/\n"
    "  OS=[Linux], version=[#1 SMP PREEMPT_DYNAMIC Fri Oct 17 14:16:35 EDT 2025],"
    " release=[5.14.0-611.5.1.el9_7.x86_64], machine=[x86_64]\n"
    "  nodename=[js-iristest01l.syti.fi].\n"
    "  numasyncwijbuf: 2, wdwrite_asyncio_max: 64, wijdirectio: on, synctype: 3\n"
    "  System Initialized.\n"
)
JOURNAL = (
    "11/14/25-09:46:09:550 (51655) 0 [Generic.Event] INTERSYSTEMS IRIS JOURNALING SYSTEM MESSAGE\n"
    "Journaling started to: /usr/local/IRIS/mgr/journal/20251114.001\n"
)
JOURNAL_LOCK = (
    "11/20/25-13:27:24:882 (40158) 2 [Generic.Event] INTERSYSTEMS IRIS JOURNALING SYSTEM MESSAGE\n"
    "Failed to lock alternate journal directory /journal/journal2/\n"
    "Journaling started but cannot failover to alternate directory until this problem is resolved.\n"
)
WIJ_INFO = (
    "11/14/25-10:48:58:877 (12818) 0 [Generic.Event] Jrn info from prior WIJ (imflags: 0):\n"
    "\twdpass: 0\n\tjrnwdpass: 253\n\tfspec: /usr/local/IRIS/mgr/journal/20251114.001\n"
    "\tfilecnt: 1\n\tfileoff: 4737008\n"
)
DEGRADATION = (
    "11/27/25-16:08:53:863 (213251) 3 [Generic.Event] *** SERIOUS INTERSYSTEMS IRIS ERROR THAT"
    " COULD CAUSE DATABASE DEGRADATION\n"
    "\tHAS OCCURRED.  TO PREVENT DEGRADATION THE WRITE DAEMON WILL NOT RUN ***\n"
    "ERROR: <DATABASE MAP LABEL> (59)  FILE: 23   (/database/TEST/)  GLOBAL: Ens.Suspended"
    "  PID: 213262  ERROR MODULE: $Id: //iris/2025.2.0/kernel/common/src/x.c#1 $ LINE: 100\n"
)
PAUSE = (
    "11/27/25-16:13:48:837 (213188) 2 [WriteDaemon.Pausing] CP: Pausing users because the Write"
    " Daemon has not shown\n"
    "    signs of activity for 301 seconds. Users will resume if Write Daemon completes a\n"
    "    pass or writes to disk (wdpass=3).\n"
)
SIGTERM = (
    "11/27/25-16:25:12:568 (213265) 0 [Generic.Event] Clean daemon. exited due to SIGTERM"
    " received\n\n\n\n"
)
RECOVERY = (
    "*** Recovery started at Fri Nov 28 08:34:25 2025\n"
    "     Current default directory: /usr/local/IRIS/mgr\n"
    "     Log file directory: /usr/local/IRIS/mgr/\n"
    "     WIJ file spec: /usr/local/IRIS/mgr/IRIS.WIJ\n"
    "Recovering local (/usr/local/IRIS/mgr/IRIS.WIJ) image journal file...\n"
    "Starting WIJ recovery for '/usr/local/IRIS/mgr/IRIS.WIJ'.\n"
    "  0 blocks pending in this WIJ.\n"
    "Exiting with status 3 (Success)\n"
)
SINGLE_USER = (
    "11/28/25-09:09:27:483 (4829) 1 [Utility.Event] There exists a MISMATCH.WIJ file.\n"
    "Startup aborted, entering single user mode.\n"
    "Enter the instance with \n"
    "     iris session IRIS -B\n"
    "and D ^STURECOV for help recovering from this error.\n"
)
SINGLE_USER_STARTED = (
    "11/28/25-09:01:23:502 (488486) 0 [WriteDaemon.Started] Write daemon started.\n"
    "InterSystems IRIS is started in single user mode.\n"
    "To log into InterSystems IRIS, type:\n"
    "    iris session IRIS -B\n"
    "and D ^STURECOV for help recovering from this error.\n"
)
STRAY = (
    "11/20/25-13:17:22:543 (33876) 0 [Utility.Event] LMF Info:  Sending shutdown message to local"
    " license server 127.0.0.1,4002\n"
    "\n"
    "Printing the last 0 entries out of 0 total occurrences.\n"
    "Err   Process    Date/Time           Mod Line  Routine            Namespace\n"
)
DUMP_ROWS = "".join(
    f"\t {i:2}   2    0    61     7    5   26   1      5     0    4    1    1 10  4499  ok %Cls{i}\n"
    for i in range(40)
)
DUMP = (
    "11/27/25-16:28:54:284 (3984) 0 [Generic.Event] Full process dump requested (JobType=Interactive"
    " job (application mode),Directory='/database/TEST/').\n"
    "Dumping all shared classes - num vec 5 * vec-size 256 max sid 1279 inuse 967!!\n"
    "\t==== Super classes =====\n"
    "\tID Lvl numb Cprop Cmthd Cprm refs sfn methds props prms desc rtns ty  pid   St name\n"
    + DUMP_ROWS
)

FORMS = [
    pytest.param(BANNER, 10, id="empty-header-then-startup-banner"),
    pytest.param(JOURNAL, 2, id="journal-system-message"),
    pytest.param(JOURNAL_LOCK, 3, id="journal-lock-failure-two-lines"),
    pytest.param(WIJ_INFO, 6, id="tab-indented-key-value-block"),
    pytest.param(DEGRADATION, 3, id="degradation-banner"),
    pytest.param(PAUSE, 3, id="four-space-wrap"),
    pytest.param(SIGTERM, 4, id="trailing-blank-lines"),
    pytest.param(RECOVERY, 8, id="wij-recovery-block-without-timestamps"),
    pytest.param(SINGLE_USER, 5, id="operator-instructions-after-failed-start"),
    pytest.param(SINGLE_USER_STARTED, 5, id="started-in-single-user-mode"),
    pytest.param(STRAY, 4, id="stray-program-output"),
    pytest.param(DUMP, 44, id="process-dump-class-table"),
]


@pytest.mark.parametrize(("form", "lines"), FORMS)
def test_each_multiline_form_is_one_entry(form: str, lines: int) -> None:
    data = (form + NEXT).encode()
    found = entries(data)
    assert [e.text for e in found] == [form.rstrip(), NEXT.rstrip()]
    assert [e.lines for e in found] == [lines, 1]
    assert found[0].end == len(form.encode())
    assert_tiles(found, data)


@pytest.mark.parametrize(("form", "lines"), FORMS)
def test_each_form_gives_the_same_entries_fed_one_byte_at_a_time(form: str, lines: int) -> None:
    data = (NEXT + form + NEXT + form).encode()
    assert bytewise(data) == entries(data)
    assert len(entries(data)) == 4


def test_recovery_block_starts_its_own_entry_after_blank_lines() -> None:
    """The blank lines IRIS writes before `*** Recovery started` stay with the entry before."""
    data = (SIGTERM + RECOVERY + NEXT).encode()
    found = entries(data)
    assert [e.text.partition("\n")[0] for e in found] == [
        SIGTERM.partition("\n")[0],
        "*** Recovery started at Fri Nov 28 08:34:25 2025",
        NEXT.rstrip(),
    ]
    assert found[1].offset == len(SIGTERM)


def test_period_before_milliseconds_also_starts_an_entry() -> None:
    data = b"11/14/25-09:45:55.730 (1) 0 [Generic.Event] a\n11/14/25-09:45:55.731 (1) 0 b\n"
    assert len(entries(data)) == 2


# -- the real sample ---------------------------------------------------------------------------------

needs_sample = pytest.mark.skipif(not SAMPLE.exists(), reason="the real sample log is not here")


@needs_sample
def test_real_sample_in_random_chunks_gives_the_same_entries() -> None:
    data = SAMPLE.read_bytes()
    whole = entries(data)
    rng = random.Random(20251114)
    sizes = [rng.choice((1, 7, 80, 4096, 65536, 1 << 20)) for _ in range(400)]
    assert entries(data, chunks=sizes) == whole
    assert_tiles(whole, data)
    assert len(whole) == 11_950
    assert sum(e.lines for e in whole) == 49_449


@needs_sample
def test_real_sample_excerpt_fed_one_byte_at_a_time() -> None:
    data = SAMPLE.read_bytes()
    start = data.index(b"*** Recovery started")
    excerpt = data[start : start + 40_000]
    excerpt = excerpt[: excerpt.rindex(b"\n") + 1]
    assert bytewise(excerpt) == entries(excerpt)


@needs_sample
def test_real_process_dump_is_capped_and_counted() -> None:
    """The sample's process dumps run to thousands of lines; an entry keeps 200 and counts the rest."""
    found = entries(SAMPLE.read_bytes())
    biggest = max(found, key=lambda e: e.lines)
    assert biggest.lines > 1000
    assert biggest.text.count("\n") + 1 == 200
    assert biggest.cut_lines == biggest.lines - 200
    assert sum(e.cut_lines for e in found) == 34_709


# -- partial lines and flushing ----------------------------------------------------------------------


def test_partial_last_line_is_held_back() -> None:
    assembler = LineAssembler()
    head = NEXT.encode()
    assert assembler.feed(head + head[:30]) == []  # the first entry may still get continuations
    assert assembler.pending_offset == 0
    assert assembler.position == len(head) + 30
    flushed = assembler.flush()
    assert [e.text for e in flushed] == [NEXT.rstrip()]
    assert assembler.pending_offset == len(head)  # the partial line is not in any entry yet
    assert assembler.flush() == []
    assert assembler.feed(head[30:]) == []
    assert [e.offset for e in assembler.flush()] == [len(head)]


def test_flush_final_emits_the_incomplete_last_line() -> None:
    assembler = LineAssembler()
    assert assembler.feed(b"11/14/25-09:45:55:730 (1) 0 [Generic.Event] no newline yet") == []
    assert assembler.flush() == []
    [entry] = assembler.flush(final=True)
    assert entry.text.endswith("no newline yet")
    assert (entry.offset, entry.end, entry.lines) == (0, 58, 1)
    assert assembler.flush(final=True) == []


def test_continuation_after_flush_is_kept_not_lost() -> None:
    """A continuation that arrives after the entry was flushed (linger) is an entry of its own."""
    assembler = LineAssembler()
    assembler.feed(NEXT.encode())
    [first] = assembler.flush()
    later = assembler.feed(b"\tlate continuation\n" + NEXT.encode()) + assembler.flush()
    assert [e.text for e in later] == ["\tlate continuation", NEXT.rstrip()]
    assert later[0].offset == first.end


def test_assembler_can_start_at_a_checkpoint_offset() -> None:
    assembler = LineAssembler(offset=1000)
    found = assembler.feed(NEXT.encode() * 2) + assembler.flush()
    assert [(e.offset, e.end) for e in found] == [
        (1000, 1000 + len(NEXT)),
        (1000 + len(NEXT), 1000 + 2 * len(NEXT)),
    ]


# -- over-long lines and entry caps ------------------------------------------------------------------

SMALL = Limits(max_line_bytes=100, max_entry_lines=4, max_entry_bytes=300)


def test_overlong_line_is_truncated_and_flagged() -> None:
    data = (H + "x" * 500 + "\n" + NEXT).encode()
    assembler = LineAssembler(limits=SMALL)
    found = assembler.feed(data) + assembler.flush(final=True)
    assert found[0].truncated
    assert found[0].text == (H + "x" * 500)[:100]
    assert found[0].end == len(H) + 501
    assert not found[1].truncated
    assert assembler.truncated_lines == 1


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([1] * 700, id="one-byte"),
        pytest.param([60, 5, 500], id="head-fits-then-overflows"),
        pytest.param([100, 100, 100, 100], id="spans-several-chunks"),
        pytest.param([], id="all-at-once"),
    ],
)
@pytest.mark.parametrize(
    "layout",
    [
        pytest.param("header", id="overlong-header"),
        pytest.param("continuation", id="overlong-continuation"),
        pytest.param("orphan", id="overlong-line-with-nothing-to-continue"),
        pytest.param("capped", id="overlong-line-beyond-the-entry-cap"),
    ],
)
def test_overlong_line_is_flagged_identically_whatever_the_chunking(
    layout: str, chunks: list[int]
) -> None:
    long = "y" * 300
    data = {
        "header": H + long + "\n\tshort\n" + NEXT,
        "continuation": H + "a\n\t" + long + "\n\tshort\n" + NEXT,
        "orphan": "\t" + long + "\n\tshort\n" + NEXT,
        "capped": H + "a\n" + "\tb\n" * 5 + "\t" + long + "\n" + NEXT,
    }[layout].encode()
    reference = LineAssembler(limits=SMALL)
    expected = feed_in_pieces(reference, data, [])
    assembler = LineAssembler(limits=SMALL)
    found = feed_in_pieces(assembler, data, chunks)
    assert found == expected
    assert sum(e.truncated for e in found) == 1
    assert assembler.truncated_lines == reference.truncated_lines == 1
    assert_tiles(found, data)


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(st.integers(min_value=0, max_value=40), max_size=30),
    cap=st.integers(min_value=1, max_value=30),
    terminated=st.booleans(),
)
def test_overlong_check_agrees_with_splitting_every_line(
    lines: list[int], cap: int, terminated: bool
) -> None:
    data = b"\n".join(b"x" * n for n in lines) + (b"\n" if terminated and lines else b"")
    assembler = LineAssembler(limits=Limits(max_line_bytes=cap))
    assert assembler._has_overlong(data) == any(len(p) > cap for p in data.split(b"\n"))


def test_one_mebibyte_line_costs_no_more_than_the_cap() -> None:
    data = (H + "z" * (1 << 20) + "\n" + NEXT).encode()
    for chunks in ([], [4096] * 300):
        found = entries(data, Limits(), chunks)
        assert found[0].truncated
        assert len(found[0].text.encode()) == Limits().max_line_bytes
        assert found[1].text == NEXT.rstrip()
        assert_tiles(found, data)


def test_entry_line_cap_keeps_the_first_lines_and_counts_the_rest() -> None:
    body = "".join(f"\tline {i}\n" for i in range(10))
    data = (H + "head\n" + body + NEXT).encode()
    [entry, _] = entries(data, SMALL)
    assert entry.text.split("\n") == [H + "head", "\tline 0", "\tline 1", "\tline 2"]
    assert (entry.lines, entry.cut_lines) == (11, 7)
    assert entry.cut_bytes == sum(len(f"\tline {i}\n") for i in range(3, 10))
    assert entry.end == len(H) + 5 + len(body)
    assert bytewise(data, SMALL) == entries(data, SMALL)


def test_entry_byte_cap_keeps_whole_lines_and_counts_the_rest() -> None:
    limits = Limits(max_line_bytes=64, max_entry_lines=100, max_entry_bytes=120)
    lines = [H + "head", "\t" + "a" * 50, "\t" + "b" * 50, "\tc"]
    data = ("\n".join(lines) + "\n" + NEXT).encode()
    [entry, _] = entries(data, limits)
    assert entry.text.split("\n") == [lines[0], lines[1], lines[3]]  # b would pass 120 bytes
    assert (entry.lines, entry.cut_lines, entry.cut_bytes) == (4, 1, 52)
    assert bytewise(data, limits) == entries(data, limits)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(max_entry_lines=0)


# -- encodings ---------------------------------------------------------------------------------------


def test_invalid_utf8_is_replaced_and_counted() -> None:
    data = (
        (H + "caf").encode() + b"\xe9 \xff\xfe\n" + "\tnaïve \ufffd ok\n".encode() + NEXT.encode()
    )
    [entry, nxt] = entries(data)
    assert entry.text == H + "caf\ufffd \ufffd\ufffd\n\tnaïve \ufffd ok"
    assert entry.decode_errors == 3  # the U+FFFD that was in the input is not an error
    assert nxt.decode_errors == 0
    assert bytewise(data) == entries(data)


def test_truncation_inside_a_multibyte_character_is_one_decode_error() -> None:
    limits = Limits(max_line_bytes=len(H) + 3, max_entry_lines=10, max_entry_bytes=1000)
    data = (H + "ab€€€\n" + NEXT).encode()
    [entry, _] = entries(data, limits)
    assert entry.truncated
    assert entry.text == H + "ab\ufffd"
    assert entry.decode_errors == 1


def test_crlf_line_ends_are_normalised_but_offsets_count_every_byte() -> None:
    data = (PAUSE + NEXT).replace("\n", "\r\n").encode()
    found = entries(data)
    assert [e.text for e in found] == [PAUSE.rstrip(), NEXT.rstrip()]
    assert found[0].end == len(PAUSE) + PAUSE.count("\n")
    assert bytewise(data) == found
    assert_tiles(found, data)


# -- properties over arbitrary logs ------------------------------------------------------------------

LINES = st.sampled_from(
    [
        NEXT.encode(),
        (H + "\n").encode(),
        b"\tin ../bin/\n",
        b"    signs of activity for 301 seconds.\n",
        b"\n",
        b"*** Recovery started at Fri Nov 28 08:34:25 2025\n",
        b"\t" + b"w" * 90 + b"\n",
        (H + "v" * 120 + "\n").encode(),
        b"\xff\xfe broken\n",
        b"caf\xc3\xa9\r\n",
        b"11/14/25-09:4",  # a line cut off mid-timestamp
        b"no newline at all",
    ]
)
# A line cap shorter than a timestamp would hide whether a cut-off line starts an entry; the
# configuration allows no less than 256 bytes.
LIMITS = st.builds(
    Limits,
    max_line_bytes=st.integers(24, 200),
    max_entry_lines=st.integers(1, 6),
    max_entry_bytes=st.integers(8, 400),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(LINES, max_size=30),
    cuts=st.lists(st.integers(1, 97), max_size=60),
    limits=LIMITS,
)
def test_any_chunking_gives_the_same_entries(
    lines: list[bytes], cuts: list[int], limits: Limits
) -> None:
    data = b"".join(lines)
    whole = entries(data, limits)
    assert entries(data, limits, cuts) == whole
    assert bytewise(data, limits) == whole
    if data:
        assert_tiles(whole, data)
    else:
        assert whole == []


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(LINES, max_size=30), cuts=st.lists(st.integers(1, 97), max_size=60))
def test_pending_offset_is_a_safe_restart_point(lines: list[bytes], cuts: list[int]) -> None:
    """Restarting at `pending_offset` after any chunk re-reads nothing already emitted, skips nothing."""
    data = b"".join(lines)
    assembler = LineAssembler()
    emitted: list[RawEntry] = []
    pos = 0
    for size in cuts:
        emitted += assembler.feed(data[pos : pos + size])
        pos = min(pos + size, len(data))
        restart = assembler.pending_offset
        assert restart == (emitted[-1].end if emitted else 0)
        resumed = LineAssembler(offset=restart)
        rest = resumed.feed(data[restart:]) + resumed.flush(final=True)
        assert emitted + rest == entries(data)
