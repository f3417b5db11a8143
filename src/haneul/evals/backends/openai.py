"""OpenAI-compatible endpoint backend (vLLM, llama.cpp server, haneul's own ``/v1`` routes).

Option scoring uses the legacy ``/completions`` route with ``echo`` and ``logprobs``, summing the
log-probabilities of the tokens that lie inside the option's characters. Servers that do not return
prompt log-probabilities are detected on the first request; the backend then reports
``supports_loglikelihood = False`` and the runner answers by generation. A server that is down is
retried with exponential backoff and then reported as :class:`EndpointUnavailable`; finished items
stay in the run's journal, so rerunning the same command continues where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from haneul.errors import HaneulError, register
from haneul.evals.backends.base import Backend, cut_at_stop


@register
class EndpointUnavailable(HaneulError):
    """The model endpoint did not answer after all retries."""

    code = "endpoint_unavailable"
    http_status = 502


class LogprobsUnsupported(Exception):
    """The endpoint answered but gave no prompt log-probabilities."""


class OpenAIBackend(Backend):
    def __init__(
        self,
        base_url: str,
        model: str = "default",
        api_key: str | None = None,
        retries: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 120.0,
        transport: Any = None,
        max_length: int | None = None,
        sleep: Any = time.sleep,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"{self.base_url}#{model}"
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_length = max_length
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)
        self._httpx = httpx
        self.supports_loglikelihood = True
        self._probed = False

    def _post(self, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{route}"
        last = ""
        for attempt in range(self.retries + 1):
            try:
                resp = self._client.post(url, json=payload)
            except self._httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    return resp.json()
                if resp.status_code in (408, 429) or resp.status_code >= 500:
                    last = f"HTTP {resp.status_code}"
                else:
                    raise HaneulError(
                        f"endpoint {url} rejected the request (HTTP {resp.status_code}: {resp.text[:200]}); "
                        "check --endpoint-model and the server's settings"
                    )
            if attempt < self.retries:
                self._sleep(self.backoff_s * (2**attempt))
        raise EndpointUnavailable(
            f"endpoint {url} did not answer after {self.retries + 1} tries ({last}); start the server and rerun "
            "the same command: finished items are kept and skipped"
        )

    def probe(self) -> bool:
        """Whether the endpoint returns prompt log-probabilities (asked once)."""
        if not self._probed:
            self._probed = True
            try:
                self._prompt_logprobs("a", " b")
            except LogprobsUnsupported:
                self.supports_loglikelihood = False
        return self.supports_loglikelihood

    def _prompt_logprobs(self, context: str, continuation: str) -> tuple[float, int]:
        full = context + continuation
        body = self._post(
            "/completions",
            {"model": self.model, "prompt": full, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0},
        )
        try:
            lp = body["choices"][0]["logprobs"]
            tokens, logprobs, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
        except (KeyError, IndexError, TypeError):
            raise LogprobsUnsupported from None
        if not offsets:
            raise LogprobsUnsupported
        total, count = 0.0, 0
        for _tok, value, off in zip(tokens, logprobs, offsets, strict=False):
            # the option's tokens start at or after the context and end before the generated token
            if len(context) <= off < len(full) and value is not None:
                total += float(value)
                count += 1
        return total, count

    def loglikelihood(self, context: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        if not self.probe():
            raise LogprobsUnsupported
        return [self._prompt_logprobs(context, c) for c in continuations]

    def generate(self, prompt: str, max_new_tokens: int, stop: Sequence[str]) -> str:
        payload: dict[str, Any] = {
            "model": self.model, "prompt": prompt, "max_tokens": max_new_tokens, "temperature": 0,
        }
        if stop:
            payload["stop"] = list(stop)
        body = self._post("/completions", payload)
        try:
            text = body["choices"][0]["text"]
        except (KeyError, IndexError, TypeError):
            raise HaneulError(f"endpoint {self.base_url} gave a completion without text; is it OpenAI-compatible?") from None
        return cut_at_stop(str(text), stop)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "max_length": self.max_length, "logprobs": self.supports_loglikelihood}
