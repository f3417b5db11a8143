"""haneul's settings: one pydantic-settings object read from ``HANEUL_*`` environment variables.

Defaults give the embedded one-machine setup: everything under ``HANEUL_HOME`` (``~/.haneul``), a
SQLite database in WAL mode, a local artifact folder and the local-subprocess executor.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANEUL_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".haneul")
    db_url: str | None = None
    artifact_root: Path | None = None
    server: str | None = None  # URL clients talk to; None means http://{host}:{port}
    host: str = "127.0.0.1"
    port: int = 7860
    # scheduler capacity of the local executor
    capacity_cpus: float | None = None  # None: os.cpu_count()
    capacity_gpus: int = 0
    capacity_memory: str = "0"  # "0": do not schedule on memory
    # limits
    max_metric_batch: int = 100_000  # points in one metric batch
    max_metric_keys: int = 10_000  # distinct metric keys one session may hold
    # bytes in one request body; 100,000 points with times take about 6 MB as JSON, and checkpoint
    # uploads are streamed to disk and not limited by it
    max_request_bytes: int = 32 << 20
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
        return self.artifact_root or self.home / "artifacts"

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
