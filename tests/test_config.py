"""Configuration: file location, precedence, defaults, and one-line errors naming the key."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from irisd.config import (
    AlertmanagerSink,
    JsonlSink,
    Settings,
    WebhookSink,
    config_path,
    format_listen,
    load_settings,
    parse_listen,
)
from irisd.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "irisd.toml"
KEY_LINE = re.compile(r"^#([a-z_]+ = .*)$")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without irisd's or systemd's variables."""
    for name in list(os.environ):
        if name.startswith("IRISD_"):
            monkeypatch.delenv(name)
    for name in ("CONFIGURATION_DIRECTORY", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "irisd.toml"
    path.write_text(text)
    return path


def uncommented(text: str) -> str:
    """The example file with every documented default switched on."""
    return "\n".join(KEY_LINE.sub(r"\1", line) for line in text.splitlines())


def test_example_file_is_valid_and_equals_defaults(tmp_path: Path) -> None:
    here = Settings(rules={"dir": EXAMPLE.parent / "rules.d"})
    assert load_settings(EXAMPLE) == here


def test_documented_defaults_are_the_real_defaults(tmp_path: Path) -> None:
    """Uncommenting every "#key = value" line of the example changes nothing."""
    text = uncommented(EXAMPLE.read_text())
    assert "\npoll_interval = 1.0" in text
    loaded = load_settings(write(tmp_path, text))
    assert loaded == Settings(rules={"dir": tmp_path / "rules.d"})


def test_every_key_is_documented_in_the_example() -> None:
    text = EXAMPLE.read_text()
    for section, field in Settings.model_fields.items():
        if section == "sinks":
            continue
        model = field.annotation
        assert isinstance(model, type)
        assert f"[{section}]" in text
        for key in model.model_fields:  # type: ignore[attr-defined]
            assert f"\n#{key} = " in text, f"{section}.{key} is not documented"
    for sink in (WebhookSink, AlertmanagerSink, JsonlSink):
        for key in sink.model_fields:
            assert f"#   {key} = " in text, f"sinks: {key} is not documented"


def test_defaults_resolved_at_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    settings = Settings()
    assert settings.instance.host == socket.gethostname()
    assert settings.state.dir == tmp_path / "state"
    assert settings.api.token_file == tmp_path / "state" / "api.token"
    assert settings.state.database_path == tmp_path / "state" / "irisd.sqlite3"
    assert settings.rules.dir == Path("/etc/irisd/rules.d")


def test_messages_log_follows_install_dir(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[instance]\ninstall_dir = "/opt/iris"\n'))
    assert settings.instance.messages_log == Path("/opt/iris/mgr/messages.log")
    explicit = '[instance]\ninstall_dir = "/opt/iris"\nmessages_log = "/logs/m.log"\n'
    assert load_settings(write(tmp_path, explicit)).instance.messages_log == Path("/logs/m.log")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (Path("/etc/irisd/irisd.toml"), False)),
        ({"CONFIGURATION_DIRECTORY": "/cfg"}, (Path("/cfg/irisd.toml"), False)),
        ({"CONFIGURATION_DIRECTORY": "/cfg", "IRISD_CONFIG": "/x.toml"}, (Path("/x.toml"), True)),
    ],
    ids=["default", "systemd-dir", "irisd-config-wins"],
)
def test_config_path_order(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[Path, bool]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config_path() == expected
    assert config_path(Path("/given.toml")) == (Path("/given.toml"), True)


def test_missing_default_file_means_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path))
    assert load_settings() == Settings(rules={"dir": tmp_path / "rules.d"})


def test_missing_explicit_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "absent.toml")
    monkeypatch.setenv("IRISD_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings()


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path, "[tail]\npoll_interval = 2.0\nentry_linger = 0.25\n")
    monkeypatch.setenv("IRISD_TAIL__POLL_INTERVAL", "0.5")
    monkeypatch.setenv("IRISD_LOG__LEVEL", "DEBUG")
    settings = load_settings(path)
    assert settings.tail.poll_interval == 0.5
    assert settings.tail.entry_linger == 0.25  # the file's other keys survive the merge
    assert settings.log.level == "debug"


def test_sinks_from_file_are_typed(tmp_path: Path) -> None:
    text = """
[[sinks]]
name = "hook"
type = "webhook"
url = "https://hooks.example.net/x"
secret = "hmac-key-123"
[[sinks]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:9093"
min_severity = "severe"
[[sinks]]
name = "file"
type = "jsonl"
path = "/var/lib/irisd/e.jsonl"
enabled = false
"""
    hook, am, archive = load_settings(write(tmp_path, text)).sinks
    assert isinstance(hook, WebhookSink)
    assert hook.concurrency == 10
    assert isinstance(am, AlertmanagerSink)
    assert am.min_severity == 2
    assert isinstance(archive, JsonlSink)
    assert not archive.enabled
    assert "hmac-key-123" not in repr(hook)


def test_sinks_from_environment_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRISD_SINKS", '[{"name": "f", "type": "jsonl", "path": "/tmp/e.jsonl"}]')
    (sink,) = load_settings(Path("/dev/null")).sinks
    assert isinstance(sink, JsonlSink)


def test_secrets_lists_every_configured_secret(tmp_path: Path) -> None:
    text = """
[llm]
api_key = "sk-abcdefabcdefabcdef"
[[sinks]]
name = "hook"
type = "webhook"
url = "https://h.example/x"
secret = "s3cret-value"
"""
    assert set(load_settings(write(tmp_path, text)).secrets()) == {
        "sk-abcdefabcdefabcdef",
        "s3cret-value",
    }


SINK = '[[sinks]]\nname = "x"\n'
JSONL = SINK + 'type = "jsonl"\npath = "/a"\n'
BAD = [
    ("syntax", "[tail\n", r"irisd\.toml: invalid TOML: .*line 1"),
    (
        "unknown-key",
        "[tail]\npol_interval = 2\n",
        r"^tail\.pol_interval: unknown key; did you mean 'poll_interval'\?",
    ),
    ("unknown-section", "[tial]\n", r"^tial: unknown key; did you mean 'tail'\?"),
    (
        "wrong-type",
        '[tail]\nmax_entry_lines = "many"\n',
        r"^tail\.max_entry_lines: .*integer.*'many'",
    ),
    (
        "out-of-range",
        "[tail]\npoll_interval = -1\n",
        r"^tail\.poll_interval: .*greater than 0 \(got -1\)",
    ),
    (
        "bad-zone",
        '[instance]\ntimezone = "Mars/Olympus"\n',
        r"^instance\.timezone: unknown IANA time zone",
    ),
    ("bad-level", '[log]\nlevel = "loud"\n', r"^log\.level: "),
    ("bad-listen", '[api]\nlisten = "localhost"\n', r"^api\.listen: expected HOST:PORT"),
    ("relative-unix", '[api]\nlisten = "unix:api.sock"\n', r"^api\.listen: .*absolute"),
    ("db-with-slash", '[state]\ndatabase = "a/b"\n', r"^state\.database: "),
    ("llm-no-model", "[llm]\nenabled = true\n", r"^llm: llm\.model must be set"),
    (
        "sink-type",
        SINK + 'type = "kafka"\n',
        r"^sinks\[0\]\.type: must be one of alertmanager, jsonl, webhook \(got 'kafka'\)",
    ),
    ("sink-no-type", SINK, r"^sinks\[0\]\.type: must be one of"),
    (
        "sink-url",
        SINK + 'type = "webhook"\nurl = "ftp://h/"\n',
        r"^sinks\[0\]\.url: must be an http",
    ),
    ("sink-missing-url", SINK + 'type = "alertmanager"\n', r"^sinks\[0\]\.url: Field required"),
    ("sink-typo", JSONL + "paht = 1\n", r"^sinks\[0\]\.paht: unknown key; did you mean 'path'\?"),
    (
        "sink-relative",
        SINK + 'type = "jsonl"\npath = "a"\n',
        r"^sinks\[0\]\.path: must be an absolute path",
    ),
    ("sink-dup", JSONL + JSONL, r"^sinks: sink name 'x' is used twice"),
    ("sink-backoff", JSONL + "backoff_cap = 0.5\n", r"^sinks\[0\]: backoff_cap must not be below"),
    ("jsonl-keep", JSONL + "keep = 0\n", r"^sinks\[0\]\.keep: "),
    ("jsonl-max-bytes", JSONL + "max_bytes = 10\n", r"^sinks\[0\]\.max_bytes: "),
    (
        "am-resolve-after",
        SINK + 'type = "alertmanager"\nurl = "http://h:9093"\nresolve_after = -1\n',
        r"^sinks\[0\]\.resolve_after: ",
    ),
]


@pytest.mark.parametrize(("text", "pattern"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_file_is_one_line_naming_the_key(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    assert caught.value.exit_code == 78


def test_error_names_the_file_or_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(tmp_path, "[tail]\npoll_interval = 0\n")
    with pytest.raises(ConfigError, match=re.escape(f"(in {path})")):
        load_settings(path)
    monkeypatch.setenv("IRISD_DAEMON__DRAIN_TIMEOUT", "soon")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, ""))
    assert caught.value.key == "daemon.drain_timeout"
    assert "(from IRISD_DAEMON__DRAIN_TIMEOUT)" in str(caught.value)


def test_malformed_json_in_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRISD_SINKS", "not json")
    with pytest.raises(ConfigError, match=r"^sinks: IRISD_SINKS is not valid JSON$"):
        load_settings(Path("/dev/null"))


def test_secret_values_stay_out_of_error_messages(tmp_path: Path) -> None:
    # A value no temporary path can hold by chance (pytest's directories are numbered: the 42nd
    # run's path held "42", and the check failed with the secret kept out).
    text = '[[sinks]]\nname = "x"\ntype = "webhook"\nurl = "http://h/"\nsecret = 918273645\n'
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert caught.value.key == "sinks[0].secret"
    assert "918273645" not in str(caught.value)


def test_loading_twice_gives_equal_settings(tmp_path: Path) -> None:
    """SIGHUP reload calls load_settings again; it must not depend on earlier calls."""
    path = write(tmp_path, '[instance]\nname = "PROD"\n')
    assert load_settings(path) == load_settings(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8737", ("127.0.0.1", 8737)),
        ("[::1]:9000", ("::1", 9000)),
        ("unix:/run/irisd/api.sock", Path("/run/irisd/api.sock")),
    ],
)
def test_parse_listen(value: str, expected: object) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["127.0.0.1:8737", "[::1]:9000", "unix:/run/irisd/api.sock"])
def test_format_listen_writes_what_parse_listen_reads(value: str) -> None:
    assert format_listen(parse_listen(value)) == value


@pytest.mark.parametrize("value", ["8737", "host:", "host:0", "host:70000", ":80", "unix:rel"])
def test_parse_listen_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(value)
