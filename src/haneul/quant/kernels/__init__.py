"""Optional C++ lookup-table kernel for packed BCQ layers (``lut_gemm.cpp``).

The kernel is compiled with ``torch.utils.cpp_extension`` into ``$HANEUL_HOME/kernels`` by
:func:`build` (or ``haneul quant build-kernel``); once built, :func:`get` returns it without
compiling again and :class:`~haneul.quant.layers.BCQLinear` uses it for inference. On a CPU with
AVX-512 the kernel's register-table path runs (chosen at run time); elsewhere its portable scalar
path does. Nothing compiles behind the caller's back: without a built kernel the pure-torch paths
are used. Set ``HANEUL_QUANT_KERNEL=0`` to ignore a built kernel (before a layer first runs: a layer
that ran the kernel keeps calling it).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
from pathlib import Path
from types import ModuleType

from haneul.errors import HaneulError

SOURCE = Path(__file__).with_name("lut_gemm.cpp")
_loaded: ModuleType | None = None
_checked = False
_simd: bool | None = None

__all__ = ["build", "build_dir", "get", "module_name", "simd"]


def module_name() -> str:
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:10]
    return f"haneul_bcq_lut_{digest}"


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


def get() -> ModuleType | None:
    """The built kernel module, or ``None`` when it is not built (or disabled)."""
    global _loaded, _checked
    if os.environ.get("HANEUL_QUANT_KERNEL", "1") == "0":
        return None
    if _loaded is not None or _checked:
        return _loaded
    _checked = True
    if not SOURCE.is_file():  # an install without the C++ source: pure-torch paths only
        return None
    path = _built_file()
    if path is not None:
        try:
            _loaded = _import(path)
        except (ImportError, OSError):
            _loaded = None
    return _loaded


def simd() -> bool:
    """Whether the built kernel's AVX-512 path can run on this CPU (``False`` when not built)."""
    global _simd
    module = _loaded if _loaded is not None else get()  # no second environment read per forward
    if module is None:
        return False
    if _simd is None:  # asked on every forward: check the CPU once per loaded module
        _simd = bool(hasattr(module, "simd_available") and module.simd_available())
    return _simd


def build(verbose: bool = False) -> ModuleType:
    """Compile the kernel (about a minute) into ``$HANEUL_HOME/kernels`` and load it."""
    global _loaded, _checked, _simd
    from torch.utils.cpp_extension import load

    if not SOURCE.is_file():
        raise HaneulError(
            f"the kernel source {SOURCE} is missing from this install; use a source checkout to build it"
        )
    folder = build_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _loaded = load(
            name=module_name(),
            sources=[str(SOURCE)],
            build_directory=str(folder),
            # no -march=native: the AVX-512 functions carry their own target attribute, so the
            # module also loads (with the portable path) on a CPU without AVX-512
            extra_cflags=["-O3"],
            verbose=verbose,
        )
    except (RuntimeError, OSError, ImportError) as exc:
        raise HaneulError(
            f"building the BCQ kernel failed ({str(exc).splitlines()[0] if str(exc) else exc}); "
            "install a C++ compiler (apt-get install g++) or keep using the pure-torch path"
        ) from exc
    _checked = True
    _simd = None
    return _loaded
