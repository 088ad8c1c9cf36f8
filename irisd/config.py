"""irisd's configuration: one `Settings` read from a TOML file, overridden by `IRISD_*` variables.

Where the file is: `load_settings(path)` uses `path`, else `$IRISD_CONFIG`, else
`$CONFIGURATION_DIRECTORY/irisd.toml` (systemd sets it), else `/etc/irisd/irisd.toml`. A missing
default file means all defaults; a missing file that was asked for is an error.

Precedence, highest first: `IRISD_<SECTION>__<KEY>` environment variables (for example
`IRISD_TAIL__POLL_INTERVAL=0.5`; `IRISD_SINKS` takes a JSON array), then the file, then the
defaults. Every section rejects unknown keys, so a typo is an error and not a silent default.

Some defaults are resolved at load rather than written down, and an empty string in the file means
the same thing: `instance.host` (this machine's hostname), `instance.messages_log`
(`<install_dir>/mgr/messages.log` when `install_dir` is set), `state.dir` (`$STATE_DIRECTORY`, else
`/var/lib/irisd`), `api.token_file` (`<state.dir>/api.token`) and `rules.dir` (`rules.d` beside the
file loaded, else in the configuration directory).

Loading reads the environment, the hostname and the one file, and nothing else happens: SIGHUP
calls `load_settings` again and swaps the result in only if it is valid.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic import model_validator as _model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from irisd.core.model import SEVERITY_NAMES
from irisd.errors import ConfigError

ENV_PREFIX: Final = "IRISD_"
DEFAULT_CONFIG_DIR: Final = Path("/etc/irisd")
DEFAULT_STATE_DIR: Final = Path("/var/lib/irisd")
DEFAULT_INSTALL_LOG: Final = Path("/usr/irissys/mgr/messages.log")
MiB: Final = 1024 * 1024
KiB: Final = 1024

Seconds = Annotated[float, Field(gt=0, le=86_400)]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["auto", "journal", "stderr", "human", "json"]


class Section(BaseModel):
    """A `[section]` of the file: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceSection(Section):
    name: str = Field(default="IRIS", min_length=1, max_length=64)
    host: str = ""
    messages_log: Path = DEFAULT_INSTALL_LOG
    install_dir: Path | None = None
    timezone: str = ""
    control_program: str = Field(default="iris", min_length=1)

    @_model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        if not out.get("host"):
            out["host"] = socket.gethostname()
        if not out.get("messages_log"):
            install = out.get("install_dir")
            out["messages_log"] = (
                Path(install, "mgr/messages.log") if install else DEFAULT_INSTALL_LOG
            )
        return out

    @field_validator("install_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class StateSection(Section):
    dir: Path = DEFAULT_STATE_DIR
    database: str = Field(default="irisd.sqlite3", min_length=1, pattern=r"^[^/]+$")

    @property
    def database_path(self) -> Path:
        return self.dir / self.database


class TailSection(Section):
    poll_interval: Seconds = 1.0
    entry_linger: Annotated[float, Field(ge=0, le=60)] = 0.5
    read_chunk_bytes: Annotated[int, Field(ge=4 * KiB, le=64 * MiB)] = 64 * KiB
    max_line_bytes: Annotated[int, Field(ge=256, le=16 * MiB)] = 64 * KiB
    max_entry_lines: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    max_entry_bytes: Annotated[int, Field(ge=256, le=64 * MiB)] = 64 * KiB
    batch_max_events: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    retry_interval: Seconds = 5.0
    rotate_wait: Annotated[float, Field(ge=0, le=300)] = 1.0


class RulesSection(Section):
    dir: Path = Path()  # replaced at load; see _derive_paths


class ApiSection(Section):
    listen: str = "127.0.0.1:8737"
    token_file: Path = Path()  # replaced at load; see _derive_paths

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        parse_listen(value)
        return value


class LogSection(Section):
    format: LogFormat = "auto"
    level: LogLevel = "info"
    journal_backlog: bool = False  # read at start: see irisd.shell.event_journal

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class DaemonSection(Section):
    drain_timeout: Seconds = 10.0
    status_interval: Seconds = 5.0


class OutboxSection(Section):
    max_events: Annotated[int, Field(ge=1_000, le=1_000_000_000)] = 1_000_000


class LlmSection(Section):
    enabled: bool = False
    base_url: str = ""
    model: str = ""
    api_key: SecretStr = SecretStr("")
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.7
    timeout: Seconds = 60.0

    @_model_validator(mode="after")
    def _model_when_enabled(self) -> LlmSection:
        if self.enabled and not self.model:
            raise ValueError("llm.model must be set when llm.enabled is true")
        return self


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class SinkBase(Section):
    """What every sink has: a name, a severity floor, batching, concurrency and retry pacing."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    enabled: bool = True
    min_severity: Annotated[int, Field(ge=0, le=3)] = 0
    batch_max_events: Annotated[int, Field(ge=1, le=100_000)] = 500
    batch_max_bytes: Annotated[int, Field(ge=KiB, le=64 * MiB)] = MiB
    linger_ms: Annotated[int, Field(ge=0, le=60_000)] = 5
    concurrency: Annotated[int, Field(ge=1, le=100)] = 10
    timeout: Seconds = 10.0
    backoff_base: Seconds = 1.0
    backoff_cap: Seconds = 300.0

    @field_validator("min_severity", mode="before")
    @classmethod
    def _severity_name(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in SEVERITY_NAMES:
            return SEVERITY_NAMES.index(value.lower())
        return value

    @_model_validator(mode="after")
    def _backoff_order(self) -> SinkBase:
        if self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_cap must not be below backoff_base")
        return self

    def secret_value(self) -> str:
        return ""


class WebhookSink(SinkBase):
    """POSTs batches of events as JSON; `secret`, when set, signs each body (HMAC-SHA256)."""

    type: Literal["webhook"]
    url: HttpUrl
    secret: SecretStr = SecretStr("")

    def secret_value(self) -> str:
        return self.secret.get_secret_value()


class AlertmanagerSink(SinkBase):
    """Posts alerts to a Prometheus Alertmanager (`url` is its base, e.g. http://host:9093)."""

    type: Literal["alertmanager"]
    url: HttpUrl
    resolve_after: Seconds = 300.0  # a condition quiet this long resolves; also endsAt's lead
    resend_interval: Seconds = 60.0  # a repeating condition is re-posted at most this often


class JsonlSink(SinkBase):
    """Appends one JSON object per event to a local file."""

    type: Literal["jsonl"]
    path: Path
    max_bytes: Annotated[int, Field(ge=64 * KiB, le=1 << 40)] = 100 * MiB  # rotate beyond this
    keep: Annotated[int, Field(ge=1, le=1000)] = 5  # rotated files kept: path.1 … path.N

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value


Sink = Annotated[WebhookSink | AlertmanagerSink | JsonlSink, Field(discriminator="type")]


def check_unique_names(sinks: tuple[SinkBase, ...]) -> None:
    seen: set[str] = set()
    for sink in sinks:
        if sink.name in seen:
            raise ValueError(f"sink name {sink.name!r} is used twice")
        seen.add(sink.name)


class Settings(BaseSettings):
    """The whole configuration. Build it with `load_settings`; `Settings()` is all defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    instance: InstanceSection = Field(default_factory=InstanceSection)
    state: StateSection = Field(default_factory=StateSection)
    tail: TailSection = Field(default_factory=TailSection)
    rules: RulesSection = Field(default_factory=RulesSection)
    api: ApiSection = Field(default_factory=ApiSection)
    log: LogSection = Field(default_factory=LogSection)
    daemon: DaemonSection = Field(default_factory=DaemonSection)
    outbox: OutboxSection = Field(default_factory=OutboxSection)
    sinks: tuple[Sink, ...] = ()
    llm: LlmSection = Field(default_factory=LlmSection)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init values; the environment must win over it, and nothing else
        # (no .env, no secrets dir) is read behind the operator's back.
        return (env_settings, init_settings)

    @_model_validator(mode="before")
    @classmethod
    def _derive_paths(cls, data: Any) -> Any:
        return _derive_paths(data) if isinstance(data, Mapping) else data

    @field_validator("sinks")
    @classmethod
    def _unique_sinks(cls, sinks: tuple[Sink, ...]) -> tuple[Sink, ...]:
        check_unique_names(sinks)
        return sinks

    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value, for the log redactor."""
        found = [sink.secret_value() for sink in self.sinks]
        found.append(self.llm.api_key.get_secret_value())
        return tuple(value for value in found if value)


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if isinstance(value, BaseModel):
        return value.model_dump()
    return dict(value) if isinstance(value, Mapping) else {}


def _derive_paths(data: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the defaults that depend on the environment or on other keys."""
    out = dict(data)
    state, api, rules = _section(out, "state"), _section(out, "api"), _section(out, "rules")
    if not state.get("dir"):
        state["dir"] = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or DEFAULT_STATE_DIR
    if not api.get("token_file"):
        api["token_file"] = Path(state["dir"]) / "api.token"
    if not rules.get("dir"):
        rules["dir"] = default_config_dir() / "rules.d"
    out.update(state=state, api=api, rules=rules)
    return out


def default_config_dir() -> Path:
    """`$CONFIGURATION_DIRECTORY` (the first, if systemd lists several), else /etc/irisd."""
    first = os.environ.get("CONFIGURATION_DIRECTORY", "").split(":")[0]
    return Path(first) if first else DEFAULT_CONFIG_DIR


def config_path(path: Path | None = None) -> tuple[Path, bool]:
    """Which file to read, and whether it was asked for (so that its absence is an error)."""
    if path is not None:
        return path, True
    if os.environ.get("IRISD_CONFIG"):
        return Path(os.environ["IRISD_CONFIG"]), True
    return default_config_dir() / "irisd.toml", False


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the configuration. Raises `ConfigError` naming the key and the reason."""
    where, explicit = config_path(path)
    data = _read_toml(where, explicit=explicit)
    data.setdefault("rules", {})
    if isinstance(data["rules"], dict) and not data["rules"].get("dir"):
        data["rules"]["dir"] = where.parent / "rules.d"
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise config_error(exc, source=where) from None
    except SettingsError as exc:  # a variable such as IRISD_SINKS holding malformed JSON
        field = re.search(r'field "([^"]+)"', str(exc))
        key = field.group(1) if field else "settings"
        raise ConfigError(key, f"{ENV_PREFIX}{key.upper()} is not valid JSON") from None


def _read_toml(path: Path, *, explicit: bool) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(str(path), "configuration file not found") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from None


def config_error(exc: ValidationError, *, source: Path | None = None) -> ConfigError:
    """Turn pydantic's report into one line: the dotted key of the first error and its reason."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    key = dotted_key(first["loc"])
    if first["type"] in _TAG_ERRORS:
        key += ".type"
    reason = _reason(first, key)
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more)"
    env_name = _env_source(key)
    if env_name:
        reason += f" (from {env_name})"
    elif source is not None:
        reason += f" (in {source})"
    return ConfigError(key or "settings", reason)


def _env_source(key: str) -> str | None:
    """The IRISD_* variable that set `key` or its enclosing section, if one did."""
    parts = [part for part in re.split(r"[.\[]", key) if part and not part.endswith("]")]
    for length in range(len(parts), 0, -1):
        name = ENV_PREFIX + "__".join(parts[:length]).upper()
        if name in os.environ:
            return name
    return None


def dotted_key(loc: tuple[int | str, ...]) -> str:
    """('sinks', 0, 'webhook', 'url') → 'sinks[0].url': indexes in brackets, union tags dropped."""
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (isinstance(previous, int) and part in SINK_TAGS):
            out += f".{part}" if out else part
        previous = part
    return out


SINK_TAGS: Final = frozenset({"webhook", "alertmanager", "jsonl"})
_TAG_ERRORS: Final = frozenset({"union_tag_invalid", "union_tag_not_found"})


def _reason(error: Mapping[str, Any], key: str) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key" + _suggestion(key)
    if kind in _TAG_ERRORS:
        tag = error.get("ctx", {}).get("tag")
        got = f" (got {tag!r})" if kind == "union_tag_invalid" else ""
        return f"must be one of {', '.join(sorted(SINK_TAGS))}{got}"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if kind != "missing" and not isinstance(value, Mapping) and not _is_secret_key(key):
        message += f" (got {value!r})"
    return message


def _suggestion(key: str) -> str:
    section, _, name = key.rpartition(".")
    fields = _fields_of(section)
    close = difflib.get_close_matches(name, fields, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _fields_of(section: str) -> list[str]:
    if not section:
        return list(Settings.model_fields)
    if section.startswith("sinks["):
        return sorted(
            {f for m in (WebhookSink, AlertmanagerSink, JsonlSink) for f in m.model_fields}
        )
    annotation = Settings.model_fields.get(section)
    model = annotation.annotation if annotation else None
    return (
        list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
    )


def _is_secret_key(key: str) -> bool:
    return key.endswith(("secret", "api_key"))


Address = tuple[str, int] | Path  # (host, port), or a unix socket's path


def parse_listen(value: str) -> Address:
    """'127.0.0.1:8737' → (host, port); '[::1]:8737' → ('::1', port); 'unix:/path' → Path."""
    if value.startswith("unix:"):
        path = Path(value.removeprefix("unix:"))
        if not path.is_absolute():
            raise ValueError("a unix socket path must be absolute, as in unix:/run/irisd/api.sock")
        return path
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT (port 1-65535) or unix:/absolute/path")
    return host.strip("[]"), int(port)


def format_listen(address: Address) -> str:
    """The inverse of `parse_listen`: ('::1', 8737) → '[::1]:8737'; Path → 'unix:/path'."""
    if isinstance(address, Path):
        return f"unix:{address}"
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
