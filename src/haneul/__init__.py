"""haneul: a Korean-first ML platform and model toolkit.

Importing ``haneul`` gives only the in-session SDK, which works the same inside a platform session
(metrics and checkpoints go to the server) and outside one (they stay on this machine), so library
code may call it unconditionally::

    import haneul
    haneul.config({"lr": 3e-4, "opt": {"name": "adamw"}})
    haneul.report(step=10, loss=0.42)
    haneul.save("last", model.state_dict())
"""

from __future__ import annotations

from haneul.platform.sdk import (
    DATASET_PATH,
    bind,
    config,
    flush,
    load,
    log_artifact,
    param,
    paused,
    report,
    save,
    session_id,
)

__version__ = "0.1.0"

__all__ = [
    "DATASET_PATH",
    "bind",
    "config",
    "flush",
    "load",
    "log_artifact",
    "param",
    "paused",
    "report",
    "save",
    "session_id",
    "__version__",
]
