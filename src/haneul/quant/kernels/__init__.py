"""Optional C++ lookup-table kernel for packed BCQ layers (``lut_gemm.cpp`` and its headers).

The kernel is compiled with ``torch.utils.cpp_extension`` into ``$HANEUL_HOME/kernels`` by
:func:`build` (or ``haneul quant build-kernel``); once built, :func:`get` returns it without
compiling again and :class:`~haneul.quant.layers.BCQLinear` uses it for inference. One build holds
three exact paths, one per instruction set (``avx512``: ``lut_avx512.h``; ``avx2``:
``lut_avx2_shuffle.h`` with 24-bit tables, ``lut_avx2.h`` for sizes that are not multiples of 8;
``scalar``: ``lut_scalar.h``), and the fastest one this CPU supports runs, chosen at run time from
the CPU's features (CPUID): :func:`isa` names it. ``HANEUL_QUANT_ISA=avx512|avx2|scalar`` (read
once) or :func:`set_isa` forces one, for tests and benchmarks; ``avx2-int8`` (the AVX2 kernel with
int8 activation tables, about 7e-3 relative error) runs only when forced that way. Nothing compiles
behind the caller's back: without a built kernel the pure-torch paths are used. Set
``HANEUL_QUANT_KERNEL=0`` to ignore a built kernel (before a layer first runs: a layer that ran the
kernel keeps calling it).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from haneul.errors import HaneulError, InvalidInput

SOURCE = Path(__file__).with_name("lut_gemm.cpp")
#: Headers the source includes; they are part of the module's identity (its name's hash).
HEADERS = tuple(
    SOURCE.with_name(name)
    for name in ("lut_common.h", "lut_scalar.h", "lut_avx2.h", "lut_avx2_shuffle.h", "lut_avx512.h")
)
#: The exact paths, fastest first; the automatic choice is the first one the CPU supports.
EXACT_ISAS = ("avx512", "avx2", "scalar")
#: Every path: "avx2-int8" (int8 activation tables, about 7e-3 relative error) runs only when forced.
ISAS = (*EXACT_ISAS, "avx2-int8")
SIMD_ISAS = ("avx512", "avx2", "avx2-int8")

_loaded: ModuleType | None = None
_checked = False
_supported: tuple[str, ...] | None = None
_isa: str | None = None  # the resolved path, once asked
_forced: str | None = None  # set_isa()
_env_read = False
#: Bumped whenever the path may change, so a layer's cached plan (which holds an entry point) is
#: rebuilt instead of calling the previous path.
generation = 0

__all__ = [
    "ENTRY_POINTS",
    "EXACT_ISAS",
    "ISAS",
    "SIMD_ISAS",
    "build",
    "build_dir",
    "gemm_entry",
    "generation",
    "get",
    "isa",
    "module_name",
    "set_isa",
    "simd",
    "supported_isas",
]


def _sources() -> list[Path]:
    return [SOURCE, *HEADERS]


def module_name() -> str:
    digest = hashlib.sha256()
    for path in _sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"haneul_bcq_lut_{digest.hexdigest()[:10]}"


def build_dir() -> Path:
    from haneul.settings import get_settings

    return get_settings().home / "kernels" / module_name()


def _built_file() -> Path | None:
    folder = build_dir()
    if not folder.is_dir():
        return None
    for path in folder.glob(f"{module_name()}*.so"):
        return path
    return None


def _import(path: Path) -> ModuleType:
    import torch  # noqa: F401  (the extension links against torch's libraries)

    loader = importlib.machinery.ExtensionFileLoader(module_name(), str(path))
    spec = importlib.util.spec_from_file_location(module_name(), str(path), loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _reset_choice() -> None:
    global _supported, _isa, generation
    _supported = None
    _isa = None
    generation += 1


def get() -> ModuleType | None:
    """The built kernel module, or ``None`` when it is not built (or disabled)."""
    global _loaded, _checked
    if os.environ.get("HANEUL_QUANT_KERNEL", "1") == "0":
        return None
    if _loaded is not None or _checked:
        return _loaded
    _checked = True
    if not all(path.is_file() for path in _sources()):  # an install without the C++ source
        return None
    path = _built_file()
    if path is not None:
        try:
            _loaded = _import(path)
        except (ImportError, OSError):
            _loaded = None
        _reset_choice()
    return _loaded


def supported_isas() -> tuple[str, ...]:
    """The kernel paths this CPU can run, fastest first (empty when the kernel is not built)."""
    global _supported
    module = _loaded if _loaded is not None else get()
    if module is None:
        return ()
    if _supported is None:
        _supported = tuple(name for name in ISAS if module.isa_supported(name))
    return _supported


def _check_isa(name: str, origin: str) -> str:
    if name not in ISAS:
        raise InvalidInput(f"{origin}={name!r} is not a kernel path; choose one of {', '.join(ISAS)}")
    supported = supported_isas()
    if supported and name not in supported:
        raise InvalidInput(
            f"{origin}={name!r}: this CPU cannot run that path; it supports {', '.join(supported)}"
        )
    return name


def set_isa(name: str | None) -> None:
    """Force the kernel path (``"avx512"``, ``"avx2"``, ``"scalar"`` or ``"avx2-int8"``); ``None`` chooses by CPU again
    (or by ``HANEUL_QUANT_ISA``). Layers that already planned a kernel call re-plan on their next call."""
    global _forced
    _forced = None if name is None else _check_isa(name, "isa")
    _reset_choice()


def isa() -> str | None:
    """The path :class:`~haneul.quant.layers.BCQLinear` runs: forced, else the fastest this CPU
    supports; ``None`` when the kernel is not built."""
    global _isa, _forced, _env_read
    if _isa is not None:
        return _isa
    supported = supported_isas()
    if not supported:
        return None
    if not _env_read:  # the environment is read once; set_isa() overrides it
        _env_read = True
        env = os.environ.get("HANEUL_QUANT_ISA", "").strip().lower()
        if env and env != "auto" and _forced is None:
            _forced = _check_isa(env, "HANEUL_QUANT_ISA")
    _isa = _forced if _forced is not None else next(name for name in supported if name in EXACT_ISAS)
    return _isa


def simd() -> bool:
    """Whether the chosen path is a SIMD one (AVX-512 or AVX2) reading repacked codes."""
    return isa() in SIMD_ISAS


#: The SIMD entry points ``bcq_gemm_<name>``: fp32 tables on repacked 16-row words (avx512, avx2),
#: and byte-shuffle tables on 32-row bytes (avx2_bytes: 24-bit, exact; avx2_int8: the fast mode).
ENTRY_POINTS = ("avx512", "avx2", "avx2_bytes", "avx2_int8")


def gemm_entry(name: str | None = None) -> Callable[..., Any]:
    """The SIMD entry point ``bcq_gemm_<name>`` (default: the chosen path's):
    ``(x, operands, alpha, out, group_size) -> y``."""
    module = _loaded if _loaded is not None else get()
    chosen = name or (isa() or "").replace("-", "_")
    if module is None or chosen not in ENTRY_POINTS:
        raise InvalidInput(f"the kernel path {chosen!r} has no SIMD entry point; build the kernel on x86-64")
    return getattr(module, f"bcq_gemm_{chosen}")


def build(verbose: bool = False) -> ModuleType:
    """Compile the kernel (about a minute) into ``$HANEUL_HOME/kernels`` and load it."""
    global _loaded, _checked
    from torch.utils.cpp_extension import load

    missing = [str(path) for path in _sources() if not path.is_file()]
    if missing:
        raise HaneulError(
            f"the kernel sources {', '.join(missing)} are missing from this install; use a source checkout to build it"
        )
    folder = build_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _loaded = load(
            name=module_name(),
            sources=[str(SOURCE)],
            build_directory=str(folder),
            # no -march=native: each SIMD path carries its own target attribute, so the module
            # loads on any x86-64 CPU and the path is chosen at run time
            extra_cflags=["-O3"],
            extra_include_paths=[str(SOURCE.parent)],
            verbose=verbose,
        )
    except (RuntimeError, OSError, ImportError) as exc:
        raise HaneulError(
            f"building the BCQ kernel failed ({str(exc).splitlines()[0] if str(exc) else exc}); "
            "install a C++ compiler (apt-get install g++) or keep using the pure-torch path"
        ) from exc
    _checked = True
    _reset_choice()
    return _loaded
