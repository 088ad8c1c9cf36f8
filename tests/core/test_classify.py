"""The rule table: every default rule has a message it classifies, unknowns keep their severity,
operator rules win and can disable defaults, invalid rules are named, the cache never changes an
answer, and the real sample classifies with nothing unparsed."""

from __future__ import annotations

import collections
import functools
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irisd.core.classify import Classifier, RuleError, key_of, load_rules
from irisd.core.lines import RawEntry, assemble
from irisd.core.logline import LocalClock, parse
from irisd.core.model import Classification, LogEntry, Severity
from irisd.errors import ConfigError
from irisd.rules import build_classifier, default_classifier, default_documents

SAMPLE = Path(__file__).resolve().parents[2] / "tests/data/messages.log"
needs_sample = pytest.mark.skipif(not SAMPLE.exists(), reason="the real sample log is not here")


def classify(text: str, classifier: Classifier | None = None) -> Classification:
    """Parse one messages.log entry (header and continuation lines) and classify it."""
    [raw] = assemble(text.encode())
    entry = parse(raw, LocalClock(UTC))
    assert isinstance(entry, LogEntry), entry
    return (classifier or default_classifier()).classify(entry.category, entry.text, entry.severity)


# Real entries of the 49,449-line sample, one or more per rule they hit: (rule, severity after
# classification, how the entry starts, text in its message).
REAL = [
    ("config.cpf_error#1", 3, "12/19/25-09:22:45:730 (4682)", "Duplicate line detected, LINE:'memlock=0'"),
    ("config.cpf_error#1", 3, "11/20/25-13:17:17:500 (33876)", "Invalid parameter name 'DBMSSecurity'"),
    ("config.cpf_write_failed#2", 3, "11/20/25-15:47:33:596 (7954)", "Unable to copy file '/usr/local/IRIS/iris.cpf"),
    ("config.changed#4", 0, "12/04/25-11:49:49:327 (4428)", "Updating configuration information from /usr"),
    ("lifecycle.abnormal_shutdown#5", 2, "12/04/25-07:25:24:989 (6680)", "Shutdown detected WDSTOP set"),
    ("lifecycle.abnormal_shutdown#5", 2, "11/28/25-09:09:27:483 (4829)", "There exists a MISMATCH.WIJ file."),
    ("lifecycle.startup#6", 0, "12/04/25-07:22:25:599 (4750)", "Enabling logons"),
    ("lifecycle.startup#6", 0, "11/14/25-09:45:55:730 (50745)", "Startup of InterSystems IRIS [IRIS for UNIX"),
    ("lifecycle.shutdown#7", 0, "12/04/25-11:20:00:171 (7058)", "Shutdown complete"),
    ("lifecycle.config_loaded#8", 0, "12/18/25-13:37:36:459 (6779)", "Processing IO section"),
    ("memory.hugepages_fallback#9", 1, "12/04/25-08:51:53:745 (4826)", "Insufficient privileges to allocate Huge Pag"),
    ("memory.shm_failed#10", 2, "12/19/25-09:24:38:048 (5892)", "Failed to allocate 35021MB shared memory: 32"),
    ("memory.shm_allocated#11", 0, "11/21/25-14:37:02:552 (4382)", "Allocated 35058MB shared memory"),
    ("memory.pidtab#13", 0, "12/19/25-09:25:00:556 (5892)", "Ending pidtab expansion (4 chunks, 30 PIDS p"),
    ("lock.upload#15", 0, "11/27/25-16:28:48:199 (3984)", "Lock Upload Phase Complete"),
    ("license.invalid_key#18", 2, "11/14/25-09:46:09:557 (51655)", "LMF Error: No valid license key. No valid lo"),
    ("license.info#19", 0, "11/28/25-13:10:47:955 (4927)", "Shard license: 0"),
    ("journal.directory_invalid#21", 1, "11/20/25-15:48:15:006 (9069)", "Warning: Alternate and primary journal direc"),
    ("journal.directory_invalid#21", 2, "11/20/25-13:27:24:882 (40158)", "INTERSYSTEMS IRIS JOURNALING SYSTEM MESSAGE"),
    ("journal.error#22", 2, "11/20/25-13:27:24:883 (40167)", "Journaling NOT  started."),
    ("journal.error#22", 2, "11/20/25-13:27:24:883 (40158)", "JRNCREATE in jrnstart() - Error 13=(Permissi"),
    ("journal.preserving#23", 2, "12/15/25-08:59:20:056 (492263)", "Preserving journal files /journal/20251212.0"),
    ("journal.recovery#24", 0, "11/27/25-16:28:45:175 (3984)", "Performing Journal Recovery"),
    ("journal.switch#25", 0, "11/14/25-09:46:09:550 (51655)", "INTERSYSTEMS IRIS JOURNALING SYSTEM MESSAGE"),
    ("journal.purge#26", 0, "12/03/25-00:30:00:215 (97157)", "DELETE: /journal/20251130.001"),
    ("database.degradation#27", 3, "12/04/25-07:35:00:928 (5708)", "Suspending system due to <DATABASE> error"),
    ("database.degradation#27", 3, "11/27/25-16:08:53:863 (213251)", "*** SERIOUS INTERSYSTEMS IRIS ERROR THAT COU"),
    ("database.mount_failed#29", 1, "12/04/25-11:49:50:701 (4352)", "Cannot lock /database/p2p/ err(13): will try"),
    ("database.mount_failed#29", 0, "11/20/25-19:08:05:952 (90583)", "Failed to mount /database/accounting/ becaus"),
    ("database.expansion#30", 0, "12/18/25-13:37:55:076 (6778)", "Starting Expansion for database /database/xa"),
    ("database.mounted#31", 0, "11/24/25-15:01:42:104 (2053493)", "Dismounted database /database/ (SFN 10)"),
    ("wij.recovery#32", 0, "*** Recovery started at Thu Dec  4 08:17:56 2025", "WIJ file spec"),
    ("wij.file#33", 0, "11/20/25-15:46:51:934 (4445)", "No blocks pending in WIJ file"),
    ("writedaemon.died#34", 3, "12/18/25-12:28:39:787 (492031)", "Daemon WRTDMN (pid 492082) died. Freezing sy"),
    ("writedaemon.paused#35", 1, "12/04/25-07:23:58:237 (4857)", "Superserver detected that updates are suspen"),
    ("writedaemon.paused#35", 2, "11/27/25-16:13:48:837 (213188)", "CP: Pausing users because the Write Daemon h"),
    ("writedaemon.started#36", 0, "12/02/25-16:42:22:084 (4155)", "Write daemon started."),
    ("process.daemon_died#37", 3, "12/18/25-12:34:50:947 (492031)", "Daemon AUXWD (pid 492086) died. Freezing sys"),
    ("process.abnormal_exit#38", 2, "12/19/25-07:59:19:503 (6785)", "Process terminated abnormally (pid 7762, job"),
    ("process.long_running#39", 2, "11/28/25-13:11:00:972 (6158)", "^ISCSOAP in Namespace VIA has been active fo"),
    ("process.error#40", 3, "12/04/25-08:32:38:637 (5761)", "Error while trying to set locale to finw: <S"),
    ("process.cleanup#41", 0, "12/18/25-13:06:50:448 (492099)", "cleandeadjob: skipping daemon job #6"),
    ("security.certificate_expired#42", 3, "12/06/25-11:00:10:240 (4819)", "Certificate(s) have expired"),
    ("security.kerberos#43", 2, "11/14/25-09:45:57:762 (50803)", "Kerberos authentication unavailable:  Error"),
    ("security.audit#44", 0, "11/20/25-15:46:51:723 (6713)", "Auditing stopped"),
    ("security.info#45", 0, "12/04/25-07:22:18:256 (4750)", "Using OpenSSL 3.5.1 1 Jul 2025"),
    ("mirror.role#48", 0, "11/26/25-11:19:51:278 (3472028)", "Mirror debug flags set to 00000000"),
    ("ecp.state#50", 0, "11/26/25-11:17:06:493 (3472028)", "ECP: New debug level is set to 0x00016555"),
    ("backup.not_journalled#55", 1, "12/02/25-23:00:05:149 (79883)", "The following directories could not be backe"),
    ("monitor.cleared#56", 0, "12/02/25-17:44:20:854 (4262)", "[SYSTEM MONITOR] Alert state cleared."),
    ("monitor.alert#57", 1, "12/11/25-14:28:14:735 (4819)", "[SYSTEM MONITOR] DBLatency(/database/via/) W"),
    ("monitor.info#58", 0, "12/11/25-14:38:15:734 (4819)", "[SYSTEM MONITOR] DBLatency(/database/via/) o"),
    ("upgrade.info#60", 0, "11/20/25-15:48:15:086 (9069)", "Loading all namespaces"),
    ("web.error#61", 2, "11/21/25-10:31:30:787 (16256)", "Error: <NOTOPEN>WebServer+38^STU1 in WebServ"),
    ("app.error#63", 2, "11/21/25-13:51:28:779 (142494)", " See output in /usr/local/IRIS/mgr/integ.txt"),
    ("app.info#64", 0, "12/04/25-11:15:25:978 (4311)", "Purging old application errors"),
    ("lifecycle.startup.chatter", 0, "12/04/25-11:49:49:095 (4428)", "Loading DLLs"),
]  # fmt: skip

# No real log here has these (FACTS.md §2: lock table full, heap exhaustion, <FILEFULL> and more
# were never seen): representative text, most of it the emulator's own wording. (rule, severity
# after classification, severity written, category, message)
U, G = "Utility.Event", "Generic.Event"
REPRESENTATIVE = [
    ("config.merge_failed#3", 1, 1, U, "Configuration merge of /tmp/merge.cpf failed: ERROR #5001"),
    ("memory.gmheap#12", 2, 2, U, "[SYSTEM MONITOR] SMHeap Alert: Shared memory heap is 96% used"),
    ("lock.table_full#14", 1, 1, U, "[SYSTEM MONITOR] LockTable Warning: Lock table is 87% full"),
    ("lock.table_full#14", 2, 2, G, "Lock table full: LOCK request by process 4242 failed"),
    ("license.limit_exceeded#16", 2, 1, U, "License limit exceeded 3 times since instance start."),
    ("license.server_unreachable#17", 1, 1, U, "LMF Warning: Unable to connect to license server"),
    ("journal.disk_full#20", 2, 2, G, "INTERSYSTEMS IRIS JOURNALING SYSTEM MESSAGE\nJournal write"
     " to /journal/ failed: no space left on device"),
    ("journal.disk_full#20", 2, 1, U, "[SYSTEM MONITOR] Journal space Warning: 200 MB free"),
    ("journal.disk_full#20", 2, 2, G, "JRNCREATE in jrnstart() - Error 28=(No space left on device)"),
    ("database.full#28", 2, 2, G, "Expansion failed for database /db/: it has reached its maximum"
     " size of 500 MB"),
    ("database.full#28", 2, 2, U, "<FILEFULL> error in process 4242: database /db/ is full"),
    ("mirror.vip_failed#46", 2, 1, G, "AddVirtualAddress failed for 10.0.0.9/24 on eth0"),
    ("mirror.failover#47", 0, 0, G, "MirrorServer: Failover to this member initiated"),
    ("ecp.connection_lost#49", 2, 2, U, "[SYSTEM MONITOR] ECP connection to data server DS1"
     " (10.0.0.7:1972) lost: state Trouble"),
    ("sharding.attach_failed#51", 2, 2, U, "Shard data node attach failed: node 2 unreachable"),
    ("sharding.info#52", 0, 0, U, "Sharding initialised as data node 2"),
    ("backup.freeze#53", 0, 0, U, "Backup: system freeze for external backup"),
    ("backup.thaw#54", 0, 0, U, "Backup: system thaw, writes resumed"),
    ("upgrade.error#59", 1, 1, U, "Upgrade of namespace USER failed: ERROR #5002"),
    ("web.started#62", 0, 0, U, "Private web server started on port 52773"),
]  # fmt: skip


def sample_entry(start: str, needle: str) -> str:
    """The text of the sample's entry that starts with `start` and contains `needle`."""
    found = [r.text for r in _sample_raws() if r.text.startswith(start) and needle in r.text]
    assert len(found) == 1, f"{start} {needle}: {len(found)} entries"
    return found[0]


@functools.cache
def _sample_raws() -> tuple[RawEntry, ...]:
    """The real sample's entries, cut once for every test that reads them."""
    return tuple(assemble(SAMPLE.read_bytes()))


@needs_sample
@pytest.mark.parametrize(
    ("rule", "severity", "start", "needle"),
    [pytest.param(*row, id=f"{row[0]}-{i}") for i, row in enumerate(REAL)],
)
def test_real_entry_classifies_to_its_rule(
    rule: str, severity: int, start: str, needle: str
) -> None:
    assert_rule(classify(sample_entry(start, needle) + "\n"), rule, severity)


@pytest.mark.parametrize(
    ("rule", "severity", "written", "category", "message"),
    [pytest.param(*row, id=f"{row[0]}-{i}") for i, row in enumerate(REPRESENTATIVE)],
)
def test_representative_message_classifies_to_its_rule(
    rule: str, severity: int, written: int, category: str, message: str
) -> None:
    text = f"12/01/25-10:00:00:000 (100) {written} [{category}] {message}\n"
    assert_rule(classify(text), rule, severity)


def assert_rule(result: Classification, rule: str, severity: int) -> None:
    rules = {r.id: r for r in default_classifier().rules}
    assert result.rule == rule
    assert result.code == rules[rule].code
    assert result.error_type == rules[rule].error_type
    assert result.severity == severity


def test_every_default_rule_has_a_message() -> None:
    covered = {row[0] for row in REAL} | {row[0] for row in REPRESENTATIVE}
    assert covered == {r.id for r in default_classifier().rules}


def test_default_rule_ids_name_their_position_in_the_file() -> None:
    ids = [r.id for r in default_classifier().rules]
    assert ids[0] == "config.cpf_error#1"
    assert ids[-1] == "lifecycle.startup.chatter"
    assert len(ids) == len(set(ids))


# -- unknown messages and severity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "code", "error_type"),
    [
        pytest.param(Severity.INFO, "unknown.info", "none", id="info"),
        pytest.param(Severity.WARNING, "unknown.warning", "unknown", id="warning"),
        pytest.param(Severity.SEVERE, "unknown.severe", "unknown", id="severe"),
        pytest.param(Severity.FATAL, "unknown.fatal", "unknown", id="fatal"),
    ],
)
def test_unknown_message_keeps_its_severity(severity: Severity, code: str, error_type: str) -> None:
    result = default_classifier().classify("Generic.Event", "A message irisd never saw", severity)
    assert (result.code, result.error_type, result.severity, result.rule) == (
        code,
        error_type,
        severity,
        "",
    )


def test_rule_severity_raises_never_lowers() -> None:
    """`writedaemon.paused` has severity 1: a 0 is raised to 1, a 2 stays 2."""
    classifier = default_classifier()
    text = "CP: Pausing users because the Write Daemon has not shown"
    got = [classifier.classify("WriteDaemon.Pausing", text, s).severity for s in Severity]
    assert got == [1, 1, 2, 3]


# -- operator rules ----------------------------------------------------------------------------------

OPERATOR = """
disable = ["writedaemon.started#36"]

[[rule]]
code = "database.degradation"
error_type = "integrity"
match = '^Cannot lock \\S+ err\\(13\\)'
severity = 2

[[rule]]
id = "ours.license"
code = "license.info"
error_type = "none"
match = "^Shard license: "
category = "Utility[.]Event"
"""


def operator_classifier(*documents: tuple[str, str]) -> Classifier:
    rules, errors = load_rules([*documents, *default_documents()])
    assert errors == []
    return Classifier(rules)


def test_operator_rule_overrides_a_default() -> None:
    classifier = operator_classifier(("ops.toml", OPERATOR))
    result = classify(
        "12/04/25-11:49:50:701 (4352) 1 [Generic.Event] Cannot lock /database/p2p/ err(13):"
        " will try accessing readonly",
        classifier,
    )
    assert (result.code, result.severity, result.rule) == (
        "database.degradation",
        2,
        "database.degradation#1",
    )


def test_operator_rule_category_must_match_whole() -> None:
    classifier = operator_classifier(("ops.toml", OPERATOR))
    assert (
        classifier.classify("Utility.Event", "Shard license: 0", Severity.INFO).rule
        == "ours.license"
    )
    assert (
        classifier.classify("Utility.EventX", "Shard license: 0", Severity.INFO).rule
        == "license.info#19"
    )


def test_disable_switches_off_a_default_rule_whatever_comes_before_it() -> None:
    """The default ids do not move when an operator adds rules of their own."""
    classifier = operator_classifier(("ops.toml", OPERATOR))
    result = classifier.classify("WriteDaemon.Started", "Write daemon started.", Severity.INFO)
    assert result.code == "unknown.info"
    assert "writedaemon.started#36" not in {r.id for r in classifier.rules}
    # The disabled rule also caught this System Monitor line; the next rule that matches now does.
    text = "[SYSTEM MONITOR] WriteDaemon Alert: Write Daemon completed a pass."
    assert (
        default_classifier().classify("Utility.Event", text, Severity.INFO).code
        == "writedaemon.started"
    )
    assert classifier.classify("Utility.Event", text, Severity.INFO).code == "monitor.alert"


def test_operator_rule_files_are_read_from_the_rules_directory(tmp_path: Path) -> None:
    (tmp_path / "10-site.toml").write_text(OPERATOR)
    (tmp_path / "README.txt").write_text("not a rule file")
    classifier = build_classifier(tmp_path)
    assert classifier.rules[1].id == "ours.license"
    assert classifier.classify(
        "WriteDaemon.Started", "Write daemon started.", Severity.INFO
    ).code == ("unknown.info")


def test_missing_rules_directory_means_defaults_only(tmp_path: Path) -> None:
    assert len(build_classifier(tmp_path / "absent").rules) == len(default_classifier().rules)


# -- invalid rule files ------------------------------------------------------------------------------


def rule_doc(**changes: str | None) -> str:
    """One `[[rule]]` with valid fields, changed (or, with None, removed) as given."""
    fields = {"code": '"app.info"', "error_type": '"none"', "match": '"x"'} | changes
    return "[[rule]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)


@pytest.mark.parametrize(
    ("text", "index", "field", "reason"),
    [
        pytest.param("[[rule]\n", 0, "toml", "", id="toml-syntax"),
        pytest.param("rules = []\n", 0, "rules", "unknown top-level key", id="top-level-typo"),
        pytest.param("rule = 5\n", 0, "rule", "array of tables", id="rule-not-an-array"),
        pytest.param("rule = [1]\n", 1, "rule", "must be a table", id="rule-not-a-table"),
        pytest.param('disable = "app.info#1"\n', 0, "disable", "list", id="disable-not-a-list"),
        pytest.param(
            'disable = ["app.info#99"]\n',
            0,
            "disable",
            "no rule has the id",
            id="disable-unknown-id",
        ),
        pytest.param(rule_doc(sevrity="2"), 1, "sevrity", "unknown key", id="unknown-key"),
        pytest.param(rule_doc(code='"Bad Code"'), 1, "code", "subsystem.kind", id="code-format"),
        pytest.param(
            rule_doc(code='"kernel.panic"'), 1, "code", "subsystem must be", id="subsystem"
        ),
        pytest.param(
            rule_doc(error_type='"bad"'), 1, "error_type", "must be one of", id="error-type"
        ),
        pytest.param(rule_doc(severity="4"), 1, "severity", "0-3", id="severity-range"),
        pytest.param(rule_doc(severity="true"), 1, "severity", "0-3", id="severity-bool"),
        pytest.param(rule_doc(match=None), 1, "match", "required", id="match-missing"),
        pytest.param(rule_doc(match='"(x"'), 1, "match", "invalid regular", id="match-regex"),
        pytest.param(rule_doc(category='"[x"'), 1, "category", "invalid regular", id="category"),
        pytest.param(rule_doc(id='""'), 1, "id", "non-empty", id="empty-id"),
        pytest.param(rule_doc() + rule_doc(match="3"), 2, "match", "string", id="second-rule"),
    ],
)
def test_invalid_rule_is_named_by_source_index_and_field(
    text: str, index: int, field: str, reason: str
) -> None:
    _, errors = load_rules([("rules.d/site.toml", text)])
    assert errors, "the invalid document was accepted"
    error = errors[0]
    assert (error.source, error.index, error.field) == ("rules.d/site.toml", index, field)
    assert reason in error.reason
    assert str(error).startswith(f"rules.d/site.toml: rule {index}: {field}: ")


def test_invalid_rule_file_stops_build_classifier_with_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(rule_doc(severity="9"))
    with pytest.raises(ConfigError) as caught:
        build_classifier(tmp_path)
    assert caught.value.key == "rules"
    assert f"{tmp_path / 'site.toml'}: rule 1: severity:" in str(caught.value)


def test_rule_error_is_a_value() -> None:
    assert str(RuleError("a.toml", 3, "match", "bad")) == "a.toml: rule 3: match: bad"


# -- the shape cache ---------------------------------------------------------------------------------


DIGIT_PATTERNS = [
    pytest.param(r"Error 28=", "Error 13=(Permission denied)", "Error 28=(No space left)", id="literal-digits"),
    pytest.param(r"^Error [^5]", "Error 5", "Error 6", id="negated-single-digit"),
    pytest.param(r"^Error [^0-4]", "Error 3", "Error 7", id="negated-range"),
    pytest.param(r"^Error [0-3]", "Error 5", "Error 2", id="digit-range"),
    pytest.param(r"^Error (\d)\1", "Error 45", "Error 44", id="back-reference"),
    pytest.param(r"^Error (?:x|\x32)", "Error 1", "Error 2", id="escaped-digit-in-a-branch"),
    pytest.param(r"(?i)^error (?=9)", "Error 1", "Error 9", id="lookahead"),
]  # fmt: skip


def digit_rules(pattern: str) -> Classifier:
    """A rule that reads digits, ahead of a catch-all that does not."""
    text = f"""
[[rule]]
code = "journal.disk_full"
error_type = "resource"
match = '{pattern}'
[[rule]]
code = "app.info"
error_type = "none"
match = '^Error'
"""
    rules, errors = load_rules([("ops.toml", text)])
    assert errors == []
    return Classifier(rules)


@pytest.mark.parametrize(("pattern", "first", "second"), DIGIT_PATTERNS)
def test_shape_cache_never_changes_an_answer(pattern: str, first: str, second: str) -> None:
    """Two messages that differ only in digits have one shape; a rule that reads digits tells them
    apart, so the catch-all's cached answer for the first must not be reused for the second."""
    classifier = digit_rules(pattern)
    assert classifier.classify("Generic.Event", first, Severity.INFO).code == "app.info"
    assert classifier.classify("Generic.Event", second, Severity.INFO).code == "journal.disk_full"


@settings(max_examples=200, deadline=None)
@given(
    pattern=st.sampled_from([p.values[0] for p in DIGIT_PATTERNS]),
    numbers=st.lists(st.integers(0, 99), min_size=1, max_size=12),
)
def test_cached_answers_equal_fresh_answers(pattern: str, numbers: list[int]) -> None:
    cached = digit_rules(pattern)
    for number in numbers:
        text = f"Error {number}= x"
        fresh = digit_rules(pattern).classify("Generic.Event", text, Severity.WARNING)
        assert cached.classify("Generic.Event", text, Severity.WARNING) == fresh


@needs_sample
def test_shape_cache_agrees_with_fresh_classification_on_the_sample() -> None:
    cached = default_classifier()
    for category, message, severity in sample_keys()[:3000]:
        fresh = Classifier(cached.rules)
        assert cached.classify(category, message, severity) == fresh.classify(
            category, message, severity
        )


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.sampled_from([p.values[0] for p in DIGIT_PATTERNS]),
    parts=st.lists(
        st.one_of(
            st.integers(0, 99).map(str),
            st.text(
                alphabet="é€ü٣߁٢ \u00a0x=", max_size=4
            ),  # non-ASCII, and digits of other scripts
        ),
        min_size=1,
        max_size=6,
    ),
    repeat=st.integers(1, 3),
)
def test_cached_answers_equal_fresh_answers_for_text_beyond_ascii(
    pattern: str, parts: list[str], repeat: int
) -> None:
    """The shape is taken from the key's UTF-8 bytes: non-ASCII text and digits of other scripts
    (which `\\d` matches, and which are not masked) must not make two keys of different answers
    share a shape."""
    cached = digit_rules(pattern)
    texts = [f"Error {''.join(parts)}"] * repeat + [f"Error {'7'.join(parts)}= ü"]
    for text in texts:
        fresh = digit_rules(pattern).classify("Généric.Event", text, Severity.WARNING)
        assert cached.classify("Généric.Event", text, Severity.WARNING) == fresh


def test_key_is_category_and_first_two_lines() -> None:
    assert key_of("A.B", "one\ntwo\nthree") == "A.B\0one\ntwo"
    assert key_of(None, "only") == "\0only\n"
    long = "x" * 400 + "\nsecond\nthird"
    assert key_of(None, long) == "\0" + "x" * 300 + "\nsecond"


# -- the real sample ---------------------------------------------------------------------------------


def sample_entries() -> list[LogEntry]:
    clock = LocalClock(UTC)
    parsed = [parse(r, clock) for r in _sample_raws()]
    entries = [e for e in parsed if isinstance(e, LogEntry)]
    assert len(entries) == len(parsed), "an entry of the real sample did not parse"
    return entries


def sample_keys() -> list[tuple[str | None, str, Severity]]:
    return [(e.category, e.text, e.severity) for e in sample_entries()]


@needs_sample
def test_real_sample_classifies_with_nothing_unparsed_and_no_unknowns() -> None:
    classifier = default_classifier()
    entries = sample_entries()
    results = [classifier.classify(e.category, e.text, e.severity) for e in entries]
    assert len(entries) == 11_950
    unknown = [e for e, c in zip(entries, results, strict=True) if c.code.startswith("unknown.")]
    assert unknown == []
    # IRIS garbled three "Failed to mount ... collation" repeats itself ("dRW] d to mount"); the
    # rule table knows that shape too.
    garbled = [
        (e.text[:40], c.code)
        for e, c in zip(entries, results, strict=True)
        if e.text.startswith("dRW]")
    ]
    assert garbled == [("dRW] d to mount /database/accounting/ be", "database.mount_failed")] * 3
    assert all(c.severity >= e.severity for e, c in zip(entries, results, strict=True))
    by_code = collections.Counter()
    for e, c in zip(entries, results, strict=True):
        by_code[c.code] += e.repeat
    assert sum(by_code.values()) == 12_178
    assert by_code["unknown.info"] == 0


@pytest.mark.parametrize(("pattern", "first", "second"), DIGIT_PATTERNS)
def test_a_shape_first_seen_through_a_digit_rule_is_not_reused(
    pattern: str, first: str, second: str
) -> None:
    """The reverse order: the digit-reading rule answers the first message of a shape; the next
    one of that shape must still reach the catch-all."""
    classifier = digit_rules(pattern)
    assert classifier.classify("Generic.Event", second, Severity.INFO).code == "journal.disk_full"
    assert classifier.classify("Generic.Event", first, Severity.INFO).code == "app.info"
    assert classifier.classify("Generic.Event", second + " ", Severity.INFO).code == (
        digit_rules(pattern).classify("Generic.Event", second + " ", Severity.INFO).code
    )
