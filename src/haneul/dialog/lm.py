"""A minimal OpenAI-compatible chat client for the dialogue LM backends (operator, summariser, responder).

It speaks ``POST {base_url}/chat/completions`` to any compatible server (haneul's own ``lm serve``,
vLLM, llama.cpp) and turns every transport failure — a timeout above all — into
:class:`LMUnavailable`, so callers can fall back to a local method and say so.
"""

from __future__ import annotations

from typing import Any

from haneul.errors import HaneulError, InvalidInput, register


@register
class LMUnavailable(HaneulError):
    """The LM endpoint timed out, could not be reached or answered with an error."""

    code = "lm_unavailable"
    http_status = 502


class ChatClient:
    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        timeout: float = 30.0,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        transport: Any = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model or "default"
        self.timeout = timeout
        self.api_key = api_key
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.transport = transport

    def chat(self, messages: list[dict[str, str]]) -> str:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        url = f"{self.base_url}/chat/completions"
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                resp = client.post(url, json=body, headers=headers)
        except httpx.InvalidURL as exc:
            raise InvalidInput(f"endpoint {self.base_url!r} is not a usable URL ({exc}); pass an OpenAI-compatible "
                               "base URL such as http://127.0.0.1:8000/v1") from None
        except httpx.TimeoutException:
            raise LMUnavailable(
                f"{url} timed out after {self.timeout:g}s; raise --timeout or check the server"
            ) from None
        except httpx.HTTPError as exc:
            raise LMUnavailable(f"{url} is unreachable ({type(exc).__name__}); start the server or fix the URL") from None
        if resp.status_code >= 400:
            raise LMUnavailable(f"{url} answered HTTP {resp.status_code}; check the model name and the server log")
        try:
            return str(resp.json()["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise LMUnavailable(f"{url} did not answer in the chat-completions format; point at an OpenAI-compatible /v1") from None
