"""Prompt assembly for the Studio (HyperCLOVA §5, "HyperCLOVA Studio"): an instruction, a few examples
and the user's input become the text a completion model continues, or the messages a chat model answers.

A completion prompt reads, with ``S`` the inject-start text and ``R`` the inject-restart text::

    instruction + "\\n\\n"                               (left out when the instruction is empty)
    template(example 1 input) + S + example 1 output + R
    ...
    template(input) + S                                 <- the model continues from here

``S`` is what the model's answer starts after (e.g. ``"\\n답:"``) and ``R`` what follows an answer before the
next input (e.g. ``"\\n###\\n"``), as in CLOVA Studio's playground; with no restart text the turns are
separated by a newline. A chat prompt is a system message with the instruction, a user / assistant pair
per example and the user's templated input; the inject texts do not apply there.

Nothing here imports torch: a model is needed only to count tokens, and :func:`check_budget` takes the
counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from haneul.errors import InvalidInput

__all__ = ["Example", "Params", "PromptSpec", "MODES", "check_budget", "check_input", "render_input"]

MODES = ("completion", "chat")
#: where the user's text goes in an input template; a template without it gets the text appended
INPUT_SLOT = "{input}"
MAX_STOPS = 8


@dataclass(frozen=True)
class Params:
    """The sampling controls a preset version stores and a run may override."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 128
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    inject_start: str = ""
    inject_restart: str = ""
    seed: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, base: Params | None = None) -> Params:
        """``data`` over ``base`` (default: the defaults), checked; an unknown or mistyped key is an
        :class:`InvalidInput` naming it."""
        base = base or cls()
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"unknown parameter {unknown[0]!r}; the parameters are {', '.join(sorted(known))}")
        values = asdict(base)
        for key, value in data.items():
            values[key] = _coerce(key, value)
        values["stop"] = tuple(values["stop"])
        return cls(**values).check()

    def check(self) -> Params:
        if not (math.isfinite(self.temperature) and 0 <= self.temperature <= 5):
            raise InvalidInput(f"temperature={self.temperature} must be between 0 and 5 (0 is greedy)")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise InvalidInput(f"top_p={self.top_p} must be in (0, 1]")
        if not 0 <= self.top_k <= 100_000:
            raise InvalidInput(f"top_k={self.top_k} must be between 0 and 100000 (0 turns it off)")
        if not 1 <= self.max_tokens <= 1_000_000:
            raise InvalidInput(f"max_tokens={self.max_tokens} must be between 1 and 1000000")
        if not (math.isfinite(self.repetition_penalty) and 0 < self.repetition_penalty <= 10):
            raise InvalidInput(f"repetition_penalty={self.repetition_penalty} must be in (0, 10] (1 turns it off)")
        if len(self.stop) > MAX_STOPS or any(not s for s in self.stop):
            raise InvalidInput(f"stop takes at most {MAX_STOPS} non-empty strings; got {list(self.stop)!r}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise InvalidInput(f"seed={self.seed} must be between 0 and 2**63-1")
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stop"] = list(self.stop)
        return out


_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": (int, float), "top_p": (int, float), "repetition_penalty": (int, float),
    "top_k": (int,), "max_tokens": (int,), "seed": (int, type(None)),
    "inject_start": (str,), "inject_restart": (str,), "stop": (str, list, tuple, type(None)),
}


def _coerce(key: str, value: Any) -> Any:
    if isinstance(value, bool) or not _is(value, _TYPES[key]):
        want = " or ".join("null" if t is type(None) else t.__name__ for t in _TYPES[key])
        raise InvalidInput(f"parameter {key!r} must be {want}; got {value!r}")
    if key == "stop":
        items = [value] if isinstance(value, str) else list(value or [])
        if not all(isinstance(s, str) for s in items):
            raise InvalidInput(f"parameter 'stop' must be a string or a list of strings; got {value!r}")
        return tuple(items)
    if key in ("temperature", "top_p", "repetition_penalty"):
        return float(value)
    return value


def _is(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types)


@dataclass(frozen=True)
class Example:
    input: str
    output: str


@dataclass(frozen=True)
class PromptSpec:
    """What a preset version says about the prompt (the sampling controls are :class:`Params`)."""

    instruction: str = ""
    examples: tuple[Example, ...] = ()
    input_template: str = INPUT_SLOT
    mode: str = "completion"
    inject_start: str = ""
    inject_restart: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"mode {self.mode!r} is unknown; use one of {', '.join(MODES)}")

    @classmethod
    def build(cls, *, instruction: str = "", examples: Sequence[Mapping[str, Any] | Example] = (),
              input_template: str = INPUT_SLOT, mode: str = "completion", params: Params | None = None) -> PromptSpec:
        p = params or Params()
        return cls(instruction, parse_examples(examples), input_template or INPUT_SLOT, mode,
                   p.inject_start, p.inject_restart)

    def completion_text(self, text: str) -> str:
        """The text a completion model continues (see the module docstring for the layout)."""
        parts = [self.instruction + "\n\n"] if self.instruction else []
        restart = self.inject_restart or "\n"
        for ex in self.examples:
            parts.append(render_input(self.input_template, ex.input) + self.inject_start + ex.output + restart)
        parts.append(render_input(self.input_template, text) + self.inject_start)
        return "".join(parts)

    def chat_messages(self, text: str | None) -> list[dict[str, str]]:
        """The messages a chat model answers; ``text=None`` leaves out the final user turn (the preset
        endpoint appends the request's own messages)."""
        messages = [{"role": "system", "content": self.instruction}] if self.instruction else []
        for ex in self.examples:
            messages.append({"role": "user", "content": render_input(self.input_template, ex.input)})
            messages.append({"role": "assistant", "content": ex.output})
        if text is not None:
            messages.append({"role": "user", "content": render_input(self.input_template, text)})
        return messages


def parse_examples(items: Sequence[Mapping[str, Any] | Example] | None) -> tuple[Example, ...]:
    if items is None:
        return ()
    if not isinstance(items, list | tuple):
        raise InvalidInput(f"examples must be a list of {{'input', 'output'}} objects; got {type(items).__name__}")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Example):
            out.append(item)
            continue
        if not isinstance(item, Mapping) or set(item) != {"input", "output"} or \
                not all(isinstance(v, str) for v in item.values()):
            raise InvalidInput(f"example {i + 1} must be an object with string fields 'input' and 'output'; "
                               f"got {item!r}"[:300])
        out.append(Example(item["input"], item["output"]))
    return tuple(out)


def render_input(template: str, text: str) -> str:
    """``template`` with the user's text in its ``{input}`` slot (appended when it has none)."""
    if INPUT_SLOT in template:
        return template.replace(INPUT_SLOT, text)
    return template + text


def check_input(text: str) -> str:
    """Refuse an empty input before anything is sent to a model."""
    if not text.strip():
        raise InvalidInput("the input is empty; type the text the model should answer or continue")
    return text


def check_budget(prompt_tokens: int, max_tokens: int, context_window: int | None, model: str) -> None:
    """Refuse a prompt that leaves no room for ``max_tokens`` new tokens in the model's context window."""
    if context_window is None:
        return  # a remote server that does not say: it answers for itself
    room = context_window - max_tokens
    if prompt_tokens > room:
        raise InvalidInput(
            f"the prompt has {prompt_tokens} tokens but {model}'s context window of {context_window} minus "
            f"max_tokens={max_tokens} leaves {max(room, 0)}; shorten the instruction or examples, "
            "or lower max_tokens"
        )


@dataclass(frozen=True)
class Assembled:
    """A prompt ready to send: the completion text, or the chat messages."""

    mode: str
    text: str | None = None
    messages: list[dict[str, str]] = field(default_factory=list)

    def stored(self) -> Any:
        return self.text if self.mode == "completion" else self.messages


def assemble(spec: PromptSpec, text: str) -> Assembled:
    check_input(text)
    if spec.mode == "chat":
        return Assembled("chat", messages=spec.chat_messages(text))
    return Assembled("completion", text=spec.completion_text(text))
