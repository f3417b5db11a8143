"""Models from the platform's registry on this machine: ``model:NAME[@ALIAS|:VERSION]`` as a folder.

``haneul lm`` and ``haneul eval`` accept such a reference wherever they take a model name. The
server names the version, its session's checkpoint and that checkpoint's sha256; the checkpoint
(a folder saved with ``haneul.save``) is downloaded, verified and unpacked once into
``HANEUL_HOME/models-cache/<model>/<version>-<sha256 prefix>``, so moving an alias or saving the
checkpoint again fetches the new one and an unchanged version is never fetched twice.

The server side recognises a language model in a folder checkpoint by its content (:func:`holds_lm`:
a Llama-family ``config.json``, which haneul's own models write, beside a ``tokenizer.json``) and
unpacks it once, checked, for the OpenAI-compatible routes (:func:`unpack_lm`).
"""

from __future__ import annotations

import contextlib
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from haneul.errors import InvalidInput
from haneul.io import atomic_dir

PREFIX = "model:"
LM_CONFIG, LM_TOKENIZER = "config.json", "tokenizer.json"
#: the largest safetensors header read while checking a folder (real ones are well under 1 MiB)
MAX_SAFETENSORS_HEADER = 64 << 20


def is_model_ref(name: str) -> bool:
    return name.startswith(PREFIX)


def fetch_model(ref: str, *, server: str | None = None, cache: Path | None = None) -> Path:
    """The local folder of ``model:NAME[@ALIAS|:VERSION]`` (the prefix is optional here)."""
    from haneul.platform.client import Client

    ref = ref[len(PREFIX):] if is_model_ref(ref) else ref
    if not ref:
        raise InvalidInput("model: needs a name, e.g. model:ko-chat@production")
    if cache is None:
        from haneul.settings import get_settings

        cache = get_settings().home / "models-cache"
    with contextlib.closing(Client(server)) as client:
        got = client.call("GET", "/api/v1/model-ref", params={"ref": ref})
        if got["kind"] != "dir":
            raise InvalidInput(f"model {got['model']!r} version {got['version']} is a {got['kind']} checkpoint; "
                               "a model to load must be a folder saved with haneul.save(name, folder)")
        dest = cache / got["model"] / f"{got['version']}-{got['sha256'][:12]}"
        if dest.is_dir():
            return dest
        with tempfile.TemporaryDirectory(prefix="haneul-model-") as tmp:
            blob = Path(tmp) / "checkpoint.tar"
            client.download_checkpoint(got["session_id"], got["checkpoint"], blob)  # sha256-checked
            with atomic_dir(dest, keep=lambda path: path.is_dir()) as folder, tarfile.open(blob) as tar:
                tar.extractall(folder, filter="data")
    return dest


# --------------------------------------------------------------------------------------------------
# language-model checkpoints on the server


def is_lm_config(config: Any) -> bool:
    """Whether a parsed ``config.json`` is one :meth:`haneul.lm.generate.Generator.from_pretrained`
    loads: haneul's own (it carries a ``"haneul"`` entry) or a Hugging Face Llama causal LM."""
    if not isinstance(config, dict):
        return False
    architectures = config.get("architectures")
    return "haneul" in config or config.get("model_type") == "llama" or (
        isinstance(architectures, list) and "LlamaForCausalLM" in architectures)


def holds_lm(tar_path: Path, *, what: str) -> bool:
    """Whether a folder checkpoint (the tar ``haneul.save`` makes of a folder) holds a language model,
    judged from its top-level ``config.json`` without unpacking the rest. A ``config.json`` that is
    not JSON beside a ``tokenizer.json`` counts as a damaged language model, which :func:`unpack_lm`
    then refuses; any other folder is not one and is served by its session's code."""
    try:
        with tarfile.open(tar_path) as tar:
            names = set(tar.getnames())
            if LM_CONFIG not in names:
                return False
            member = tar.extractfile(LM_CONFIG)
            raw = member.read(MAX_SAFETENSORS_HEADER) if member is not None else b""
    except (tarfile.TarError, OSError) as exc:
        raise InvalidInput(f"{what} is a folder checkpoint that cannot be read ({exc}); save it again") from None
    try:
        config = json.loads(raw)
    except ValueError:
        return LM_TOKENIZER in names
    return is_lm_config(config)


def lm_problem(folder: Path) -> str | None:
    """What keeps ``folder`` from loading as a language model (its config, tokenizer or weights
    missing or damaged), in a few words; ``None`` when it is whole. Reads no weights, imports no torch."""
    try:
        config = json.loads((folder / LM_CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"it has no {LM_CONFIG}"
    except (ValueError, UnicodeDecodeError):
        return f"its {LM_CONFIG} is not valid JSON"
    if not isinstance(config, dict):
        return f"its {LM_CONFIG} is not a JSON object"
    from haneul.lm.config import GPTConfig

    try:  # the same reading as haneul.lm.model.GPT.from_pretrained
        GPTConfig.from_dict(config["haneul"]["config"]) if "haneul" in config else GPTConfig.from_hf(config)
    except (InvalidInput, AttributeError, KeyError, TypeError, ValueError) as exc:
        detail = exc.message if isinstance(exc, InvalidInput) else f"{type(exc).__name__}: {exc}"
        return f"its {LM_CONFIG} does not describe a model haneul loads ({detail[:200]})"
    try:
        json.loads((folder / LM_TOKENIZER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"it has no {LM_TOKENIZER} beside its weights (save the folder with its tokenizer files)"
    except (ValueError, UnicodeDecodeError):
        return f"its {LM_TOKENIZER} is not valid JSON"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return "it has no *.safetensors weights"
    for path in weights:
        problem = _safetensors_problem(path)
        if problem is not None:
            return f"its {path.name} {problem}"
    return None


def _safetensors_problem(path: Path) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header naming each tensor's byte range,
    then the data: a file cut short or overwritten fails these checks without loading a tensor."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < length <= min(size - 8, MAX_SAFETENSORS_HEADER):
            return f"is damaged: its header is missing or cut short ({size} bytes)"
        try:
            header = json.loads(fh.read(length))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "is damaged: its header is not a safetensors header"
    if 8 + length + end != size:
        return f"is truncated or damaged: it has {size} bytes where its header names {8 + length + end}"
    return None


def unpack_lm(tar_path: Path, dest: Path, *, what: str) -> Path:
    """Unpack a language-model folder checkpoint into ``dest`` once: atomically, and only when
    :func:`lm_problem` finds it whole (else one-line InvalidInput naming ``what`` and the problem).
    An existing ``dest`` (the same content, named by its sha256) is kept as it is."""
    if dest.is_dir():
        return dest
    with atomic_dir(dest, keep=lambda path: path.is_dir()) as folder:
        try:
            with tarfile.open(tar_path) as tar:
                tar.extractall(folder, filter="data")
        except tarfile.TarError as exc:
            raise InvalidInput(f"{what} cannot be unpacked ({exc}); save it again") from None
        problem = lm_problem(folder)
        if problem is not None:
            raise InvalidInput(f"{what} is a language model but {problem}; save the model folder again with "
                               "haneul.save(name, folder)")
    return dest


__all__ = ["PREFIX", "fetch_model", "holds_lm", "is_lm_config", "is_model_ref", "lm_problem", "unpack_lm"]
