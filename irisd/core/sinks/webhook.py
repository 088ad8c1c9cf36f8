"""The webhook sink: JSON batches `{"events": [...]}`, signed so a receiver can trust them.

Headers of every attempt:
- `Idempotency-Key`: the batch id, derived from the event ids, so a retried batch carries the same
  key (a receiver may dedupe whole batches by it, or events by their `event_id`).
- `X-Irisd-Timestamp`: Unix seconds of this attempt.
- `X-Irisd-Signature`: hex HMAC-SHA256, keyed with the sink's secret, over
  `timestamp + "." + body`. Binding the timestamp lets a receiver refuse replays older than a few
  minutes; binding the body lets it refuse anything altered. No secret configured, no signature.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

from irisd.core.sinks import HttpRequest, Stored

CONTENT_TYPE = "application/json"


def batch_id(event_ids: Iterable[str]) -> str:
    """32 hex digits naming this exact list of events."""
    digest = hashlib.sha256("\n".join(event_ids).encode())
    return digest.hexdigest()[:32]


def webhook_body(items: Sequence[Stored]) -> bytes:
    """The events' stored JSON joined into one object, with no re-serialisation."""
    return ('{"events":[' + ",".join(item.json for item in items) + "]}").encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b".", hashlib.sha256)
    mac.update(body)  # not `timestamp + "." + body`: that copies a batch of up to a MiB to sign it
    return mac.hexdigest()


def webhook_headers(
    body: bytes, *, key: str, secret: str | None, timestamp: int
) -> Mapping[str, str]:
    """Headers for one attempt; the timestamp (and so the signature) is fresh each time."""
    stamp = str(timestamp)
    headers = {
        "Content-Type": CONTENT_TYPE,
        "Idempotency-Key": key,
        "X-Irisd-Timestamp": stamp,
    }
    if secret:
        headers["X-Irisd-Signature"] = sign(secret, stamp, body)
    return headers


def webhook_request(
    url: str, items: Sequence[Stored], *, secret: str | None, timestamp: int
) -> HttpRequest:
    body = webhook_body(items)
    key = batch_id(item.event_id for item in items)
    return HttpRequest(
        url, webhook_headers(body, key=key, secret=secret, timestamp=timestamp), body
    )


def verify(
    secret: str,
    *,
    timestamp: str,
    signature: str,
    body: bytes,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is within `tolerance`."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    expected = sign(secret, timestamp, body)
    return age <= tolerance and hmac.compare_digest(expected, signature)
