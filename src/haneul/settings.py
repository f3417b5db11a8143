"""haneul's settings: one pydantic-settings object read from ``HANEUL_*`` environment variables.

Defaults give the embedded one-machine setup: everything under ``HANEUL_HOME`` (``~/.haneul``), a
SQLite database in WAL mode, a local artifact folder and the local-subprocess executor.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANEUL_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".haneul")
    db_url: str | None = None
    # where checkpoints and artifacts live: a folder (default $HANEUL_HOME/artifacts) or an fsspec URL
    # (s3://bucket/prefix); an S3 endpoint other than AWS's, and extra fsspec options as JSON
    artifact_root: str | None = None
    s3_endpoint_url: str | None = None
    artifact_options: dict[str, Any] = Field(default_factory=dict)
    server: str | None = None  # URL clients talk to; None means http://{host}:{port}
    host: str = "127.0.0.1"
    port: int = 7860
    # what runs sessions: "local" (subprocesses on this machine) or "ray" (a Ray cluster; ray_address
    # names it, e.g. "ray://head:10001" or "auto", and None starts a local one)
    executor: str = "local"
    ray_address: str | None = None
    # scheduler capacity of the local executor
    capacity_cpus: float | None = None  # None: os.cpu_count()
    capacity_gpus: int = 0
    capacity_memory: str = "0"  # "0": do not schedule on memory
    # limits
    max_metric_batch: int = 100_000  # points in one metric batch
    max_metric_keys: int = 10_000  # distinct metric keys one session may hold
    # worker threads metric batches may hold at once; the rest wait without a thread, so pages and
    # API reads keep threads of their own while many sessions report (a database takes one writer
    # at a time anyway)
    ingest_threads: int = Field(default=4, ge=1)
    # bytes in one request body; 100,000 points with times take about 6 MB as JSON, and checkpoint
    # uploads are streamed to disk and not limited by it
    max_request_bytes: int = 32 << 20
    # what places CareCall campaign calls: "off" (calls stay planned until a channel is configured),
    # "simulated" (simulated people answer over the text channel) or "simulated-audio" (the same over
    # the audio channel)
    carecall_dialer: str = "off"
    # a `haneul speech` checkpoint the simulated-audio dialer recognises callers with (none: the
    # reference recogniser, which tests the audio path and not recognition)
    carecall_asr_checkpoint: str | None = None
    # server plugins (entry-point names, comma-separated) to leave out at start-up
    disable_plugins: str = ""
    # seconds between samples of a session's CPU, memory and GPU use (sys/* metrics); 0 turns them off.
    # The launcher reads it from the session's environment, so `haneul run --env` can change it per session.
    sys_metrics_interval: float = Field(default=10.0, ge=0)
    # seconds `haneul deploy` waits for each replica to load its checkpoint and answer /health
    deploy_ready_timeout_s: float = Field(default=120.0, gt=0)
    # seconds a session asked to pause (haneul pause, or preempted) has to save and exit before it is stopped
    pause_grace_s: float = Field(default=60.0, ge=0)
    # competitions (haneul submit): submissions per team per dataset in any 24 hours, and the limits of the
    # eval script's process (seconds, address space) and of the session's code predicting the test inputs
    submit_daily_limit: int = Field(default=10, ge=0)
    submit_eval_timeout_s: float = Field(default=600.0, gt=0)
    submit_eval_memory: str = "4G"
    submit_infer_timeout_s: float = Field(default=1800.0, gt=0)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'haneul.db'}"

    @property
    def artifacts(self) -> Path:
        """The local artifact folder. When ``artifact_root`` is an object-store URL, checkpoints,
        artifacts and dataset blobs go there (:attr:`artifact_url`) and this folder keeps what stays local."""
        if self.artifact_root is None or self.artifact_url is not None:
            return self.home / "artifacts"
        return Path(self.artifact_root.removeprefix("file://"))

    @property
    def artifact_url(self) -> str | None:
        """The object-store URL of checkpoints and artifacts (``s3://bucket/prefix``); None for a folder."""
        root = self.artifact_root
        return root.rstrip("/") if root and "://" in root and not root.startswith("file://") else None

    @property
    def artifact_storage_options(self) -> dict[str, Any]:
        """The fsspec options :attr:`artifact_url` is opened with."""
        options = dict(self.artifact_options)
        if self.s3_endpoint_url and (self.artifact_url or "").startswith(("s3://", "s3a://")):
            options.setdefault("endpoint_url", self.s3_endpoint_url)
        return options

    @property
    def sessions_dir(self) -> Path:
        return self.home / "sessions"

    @property
    def server_url(self) -> str:
        return (self.server or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reload_settings() -> Settings:
    """Drop the cached settings (tests and the CLI change the environment at run time)."""
    get_settings.cache_clear()
    return get_settings()
