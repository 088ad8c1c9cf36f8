"""`irisd generate --llm`, the I/O: where the model is, asking it, and the loop that asks again
until there are `count` valid entries or the request budget is spent. The decisions (prompt,
checks, re-stamping, report) are in `irisd.emulator.llm`.

Where the model is, highest first: the flags (`--llm-base-url`, `--llm-model`, `--temperature`),
then `IRISD_LLM_BASE_URL` / `IRISD_LLM_MODEL` / `IRISD_LLM_API_KEY`, then the configuration's
`[llm]` section (the file and its `IRISD_LLM__*` variables), then `OPENAI_API_KEY` for the key
and openai's own default base URL. The model and the key have no default: their absence is a
configuration error (exit 78). The openai client retries nothing itself (`max_retries=0`): an
unreachable endpoint, a refused key or an unknown model fail at once with one line (exit 69);
a 429 or 5xx spends one request of the budget and is tried again after a short pause.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from irisd.emulator import llm
from irisd.emulator.generate import DEFAULT_ANCHOR, Generated
from irisd.errors import ConfigError, LlmError

if TYPE_CHECKING:
    import openai


@dataclass(frozen=True, slots=True)
class Endpoint:
    base_url: str | None  # None: openai's default (or its OPENAI_BASE_URL)
    model: str
    api_key: str
    temperature: float
    timeout: float


def endpoint(
    *,
    base_url: str | None,
    model: str | None,
    temperature: float | None,
    config: Path | None,
    env: Mapping[str, str] = os.environ,
) -> Endpoint:
    """Resolve the endpoint from the flags, the environment and the configuration."""
    from irisd.config import load_settings

    section = load_settings(config).llm
    chosen_model = model or env.get("IRISD_LLM_MODEL") or section.model
    if not chosen_model:
        raise ConfigError("llm.model", "no model: give --llm-model, IRISD_LLM_MODEL or [llm] model")
    key = env.get("IRISD_LLM_API_KEY") or section.api_key.get_secret_value()
    key = key or env.get("OPENAI_API_KEY", "")
    if not key:
        raise ConfigError("llm.api_key", "no API key: set IRISD_LLM_API_KEY or [llm] api_key")
    return Endpoint(
        base_url=base_url or env.get("IRISD_LLM_BASE_URL") or section.base_url or None,
        model=chosen_model,
        api_key=key,
        temperature=section.temperature if temperature is None else temperature,
        timeout=section.timeout,
    )


@dataclass(frozen=True, slots=True)
class Session:
    """One generation: what to ask, how much, and the seams (clock, pause) tests may replace."""

    ask: llm.Ask
    count: int
    seed: int
    max_requests: int
    examples_dir: Path | None = None
    anchor: datetime = DEFAULT_ANCHOR
    clock: Callable[[], float] = time.monotonic
    pause: Callable[[float], None] = time.sleep


def default_max_requests(count: int) -> int:
    """Twice the batches `count` needs, plus two: room for replies that are mostly rejected."""
    return 2 * -(-count // llm.BATCH) + 2


def generate(point: Endpoint, session: Session) -> tuple[list[Generated], llm.Report]:
    """Ask until `count` entries are accepted or `max_requests` are spent; the entries kept
    (at most `count`) and the report. Raises LlmError when the endpoint cannot be used at all."""
    asker = _Asker(point, session)
    stamp = llm.Restamper(seed=session.seed, anchor=session.anchor)
    kept: list[Generated] = []
    requests: list[llm.Request] = []
    started = session.clock()
    while len(kept) < session.count and len(requests) < session.max_requests:
        request, accepted = asker.ask(min(llm.BATCH, session.count - len(kept)))
        requests.append(request)
        kept += [stamp.stamp(a) for a in accepted[: session.count - len(kept)]]
        if request.error:
            session.pause(min(2.0 ** sum(1 for r in requests if r.error), 10.0))
    report = llm.Report(str(asker.client.base_url), point.model, point.temperature,
                        tuple(requests), session.clock() - started, len(kept))  # fmt: skip
    return kept, report


class _Asker:
    """One request at a time: the prompt for `count` entries, the reply checked, timed."""

    def __init__(self, point: Endpoint, session: Session) -> None:
        from irisd.rules import default_classifier

        self.client = _client(point)
        self.point = point
        self.session = session
        self.classifier = default_classifier()
        texts = llm.sample_texts(session.examples_dir)
        self.shots = llm.examples(texts, session.ask, self.classifier, seed=session.seed)
        self.codes = llm.kinds(self.classifier, session.ask.category)

    def ask(self, count: int) -> tuple[llm.Request, tuple[llm.Accepted, ...]]:
        messages = llm.prompt(self.session.ask, count, self.shots, self.codes)
        clock = self.session.clock
        t0 = clock()
        try:
            reply = _complete(self.client, self.point, messages)
        except _Retryable as exc:
            return llm.Request(count, clock() - t0, error=str(exc)), ()
        seconds = clock() - t0
        checked = llm.check(reply, self.session.ask, self.classifier)
        request = llm.Request(count, seconds, checked.returned, len(checked.accepted),
                              checked.rejected)  # fmt: skip
        return request, checked.accepted


class _Retryable(Exception):
    """A 429 or 5xx: worth another request of the budget."""


def _client(point: Endpoint) -> openai.OpenAI:
    import openai

    return openai.OpenAI(base_url=point.base_url, api_key=point.api_key, timeout=point.timeout,
                         max_retries=0)  # fmt: skip


def _complete(client: openai.OpenAI, point: Endpoint, messages: list[dict[str, str]]) -> str:
    """One chat completion's text; openai's exceptions become LlmError or _Retryable here."""
    import openai

    where = str(client.base_url)
    try:
        answer = client.chat.completions.create(
            model=point.model,
            messages=messages,  # type: ignore[arg-type]  # plain role/content dicts
            temperature=point.temperature,
        )
    except openai.APIConnectionError as exc:
        raise LlmError(f"cannot reach the model endpoint {where}: {exc.__cause__ or exc}") from None
    except (openai.RateLimitError, openai.InternalServerError) as exc:
        raise _Retryable(f"HTTP {exc.status_code}: {exc.message}") from None
    except openai.APIStatusError as exc:
        raise LlmError(f"the model endpoint {where} answered HTTP {exc.status_code} "
                       f"(model {point.model!r}): {exc.message}") from None  # fmt: skip
    except openai.OpenAIError as exc:
        raise LlmError(f"the model endpoint {where} gave an unusable answer: {exc}") from None
    choices = getattr(answer, "choices", None) or []  # a lenient server may leave them out
    return (choices[0].message.content or "") if choices else ""
