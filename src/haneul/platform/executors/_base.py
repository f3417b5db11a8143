"""The executor contract: start a session's process, poll it, stop it, re-attach after a restart.

An executor knows nothing about the database or the scheduler. The local executor runs sessions as
subprocesses on this machine; a cluster executor (Ray) implements the same four methods.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from haneul.settings import Settings


@dataclass(frozen=True)
class LaunchSpec:
    session_id: int
    command: list[str]
    env: dict[str, str]  # the complete environment of the session
    workdir: Path
    log_path: Path
    cwd: Path | None = None  # where the command runs; defaults to workdir
    # what the session asks for: "cpus", "gpus", "memory" (bytes) and any custom resource a cluster
    # executor places by (Ray's custom resources); None asks for nothing. The local executor ignores it.
    resources: dict[str, float] | None = None


@dataclass(frozen=True)
class Handle:
    """What must be remembered (in the database) to find a running session again."""

    pid: int
    pid_start: str


@dataclass(frozen=True)
class Exit:
    code: int | None  # None when the process vanished without a recorded exit code
    reason: str | None = None


class Executor(abc.ABC):
    name: str = "abstract"

    @classmethod
    def from_settings(cls, settings: Settings) -> Executor:
        """The executor configured by ``settings`` (a cluster executor reads its address there)."""
        return cls()

    def capacity(self) -> dict[str, float] | None:
        """What all sessions together may use, in :attr:`LaunchSpec.resources` keys (a cluster's total
        cpus / gpus / memory); None leaves the capacity to the settings (this machine's CPUs)."""
        return None

    @abc.abstractmethod
    def start(self, spec: LaunchSpec) -> Handle:
        """Start the session; raise a HaneulError when it cannot start."""

    @abc.abstractmethod
    def poll(self, session_id: int) -> Exit | None:
        """``None`` while the session runs, its :class:`Exit` once it has ended."""

    @abc.abstractmethod
    def stop(self, session_id: int, *, grace: float = 5.0) -> None:
        """Ask the session to end (SIGTERM to its process group), kill it after ``grace`` seconds."""

    @abc.abstractmethod
    def reattach(self, session_id: int, handle: Handle, workdir: Path) -> bool:
        """Take a session started by an earlier server process back under watch; False if it is gone."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release executor resources; running sessions keep running."""
