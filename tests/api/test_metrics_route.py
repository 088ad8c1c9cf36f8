"""/metrics is Prometheus text 0.0.4 that the reference parser reads back."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from api_fakes import AUTH, FakeServices
from prometheus_client.parser import text_string_to_metric_families

Client = TestClient  # type: ignore[type-arg]


async def test_metrics_are_exposition_0_0_4(client: Client, services: FakeServices) -> None:
    events = services.registry.counter("irisd_events_total", "Events.", ("code", "severity"))
    events.labels(code='we"ird\\code', severity="2").inc(7)
    resp = await client.get("/metrics", headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    assert families["irisd_lines"].samples[0].value == 42
    (sample,) = [s for s in families["irisd_events"].samples if s.name == "irisd_events_total"]
    assert sample.labels == {"code": 'we"ird\\code', "severity": "2"}
    assert sample.value == 7


async def test_metrics_are_read_live_on_each_scrape(client: Client, services: FakeServices) -> None:
    services.registry.get("irisd_lines_total").inc(8)  # type: ignore[union-attr]
    text = await (await client.get("/metrics", headers=AUTH)).text()
    assert "irisd_lines_total 50\n" in text
