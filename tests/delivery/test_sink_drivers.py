"""Drivers built from the configuration: one per enabled sink, with the configured pacing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from delivery_kit import FastClock

from irisd.config import load_settings
from irisd.core.model import Severity
from irisd.core.retry import Backoff
from irisd.shell.jsonl_sink import JsonlDriver
from irisd.shell.sink_drivers import AlertmanagerDriver, HttpClient, WebhookDriver, build_drivers

CONFIG = """\
[[sinks]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "s"
min_severity = "warning"
batch_max_events = 50
batch_max_bytes = 65536
linger_ms = 20
concurrency = 3
timeout = 4
backoff_base = 0.5
backoff_cap = 30

[[sinks]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:9093"

[[sinks]]
name = "am-all"
type = "alertmanager"
url = "http://127.0.0.1:9093"
min_severity = 0
resolve_after = 90
resend_interval = 15

[[sinks]]
name = "file"
type = "jsonl"
path = "{path}"
max_bytes = 1048576
keep = 2

[[sinks]]
name = "off"
type = "webhook"
url = "http://127.0.0.1:9/off"
enabled = false
"""


def test_build_drivers_follows_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "irisd.toml"
    config.write_text(CONFIG.format(path=tmp_path / "events.jsonl"))
    sinks = load_settings(config).sinks
    drivers = build_drivers(sinks, http=HttpClient(), clock=FastClock())
    hook, am, am_all, file = drivers
    assert [d.options.name for d in drivers] == ["hook", "am", "am-all", "file"]  # "off" is off
    assert isinstance(hook, WebhookDriver)
    o = hook.options
    assert (o.min_severity, o.batch_max_events, o.batch_max_bytes) == (Severity.WARNING, 50, 65536)
    assert (o.linger, o.concurrency, o.timeout) == (0.02, 3, 4)
    assert o.backoff == Backoff(base=0.5, cap=30)
    assert isinstance(am, AlertmanagerDriver)
    assert am.options.min_severity == Severity.SEVERE  # unless the operator chose another floor
    assert am.options.concurrency == 1  # the alert book wants batches in order
    assert isinstance(am_all, AlertmanagerDriver)
    assert am_all.options.min_severity == Severity.INFO
    assert (am.policy.resolve_after, am.policy.resend_interval) == (
        timedelta(minutes=5),
        timedelta(minutes=1),
    )
    assert (am_all.policy.resolve_after, am_all.policy.resend_interval) == (
        timedelta(seconds=90),
        timedelta(seconds=15),
    )
    assert isinstance(file, JsonlDriver)
    assert file.file.path == tmp_path / "events.jsonl"
    assert (file.file.max_bytes, file.file.keep) == (1 << 20, 2)
