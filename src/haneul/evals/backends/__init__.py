"""Model backends for the evaluation harness and the one resolver that turns ``--model`` into one.

``load_backend`` accepts a local Hugging Face model folder (haneul's own checkpoints are saved in that
format), ``smollm2`` for the embedded SmolLM2-135M-Instruct, or the ``http(s)://`` base URL of an
OpenAI-compatible endpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haneul.errors import NotFound
from haneul.evals.backends.base import Backend, cut_at_stop
from haneul.evals.backends.hf import HFBackend
from haneul.evals.backends.openai import EndpointUnavailable, OpenAIBackend

SMOLLM2_NAMES = ("smollm2", "smollm2-135m")


def load_smollm2_backend(device: str | None = None) -> HFBackend:
    try:
        from haneul.lm.models.smollm2 import load_smollm2
    except ImportError:
        raise NotFound(
            "the embedded SmolLM2 loader (haneul.lm.models.smollm2) is not available in this install; "
            "pass a Hugging Face model folder instead"
        ) from None
    loaded: Any = load_smollm2()
    if isinstance(loaded, tuple):
        model, tokenizer = loaded[0], loaded[1]
    elif isinstance(loaded, str | Path):
        return HFBackend.from_pretrained(loaded, device=device)
    else:
        model, tokenizer = loaded.model, loaded.tokenizer
    if device:
        model = model.to(device)
    return HFBackend(model, tokenizer, name="smollm2-135m")


def load_backend(
    spec: str, endpoint_model: str = "default", api_key: str | None = None, device: str | None = None
) -> Backend:
    """Resolve ``--model``: an HF folder, ``smollm2``, or an OpenAI-compatible base URL."""
    if spec.lower() in SMOLLM2_NAMES:
        return load_smollm2_backend(device)
    if spec.startswith(("http://", "https://")):
        return OpenAIBackend(spec, model=endpoint_model, api_key=api_key)
    path = Path(spec).expanduser()
    if path.is_dir():
        return HFBackend.from_pretrained(path, device=device)
    try:  # names registered with haneul.lm (trained checkpoints, registered folders and endpoints)
        from haneul.lm.registry import resolve
    except ImportError:
        resolve = None
    if resolve is not None:
        try:
            source = resolve(spec)
        except NotFound:
            source = None
        if source is not None:
            if source.kind == "smollm2":
                return load_smollm2_backend(device)
            if source.kind == "remote":
                return OpenAIBackend(source.location, model=endpoint_model, api_key=api_key)
            return HFBackend.from_pretrained(source.location, device=device)
    raise NotFound(
        f"model {spec!r} not found; pass a Hugging Face model folder, 'smollm2', "
        "or the http(s):// base URL of an OpenAI-compatible endpoint"
    )


__all__ = [
    "Backend",
    "EndpointUnavailable",
    "HFBackend",
    "OpenAIBackend",
    "cut_at_stop",
    "load_backend",
    "load_smollm2_backend",
]
