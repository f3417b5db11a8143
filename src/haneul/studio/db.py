"""Studio's tables: presets, their immutable versions, the runs of the playground and the preset
endpoint, and the remote model endpoints a team configured.

The tables are created by the migrations beside this module (tracked in ``alembic_version_studio``).
A preset belongs to a team; editing it adds a version, so a run always names the exact prompt and
parameters it used.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, Integer, MetaData, String, Table, Text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: 64-bit on PostgreSQL (a busy playground logs many runs); SQLite's INTEGER key is 64-bit already
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

presets = Table(
    "studio_presets", metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer, nullable=True, index=True),
    Column("name", String(100), nullable=False),  # unique per team
    Column("description", Text, nullable=False, default=""),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: a version is never edited: saving the playground adds the next one
versions = Table(
    "studio_preset_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("preset_id", Integer, nullable=False, index=True),
    Column("number", Integer, nullable=False),  # 1, 2, ... within the preset
    Column("instruction", Text, nullable=False),
    Column("examples", JSON, nullable=False),  # [{"input": ..., "output": ...}]
    Column("input_template", Text, nullable=False),
    Column("mode", String(16), nullable=False),  # chat | completion
    Column("model", String(200), nullable=False),
    Column("params", JSON, nullable=False),  # Params.to_dict()
    Column("note", Text, nullable=False, default=""),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

#: running -> done | failed | stopped (the caller went away mid-stream)
RUN_STATUSES = ("running", "done", "failed", "stopped")

runs = Table(
    "studio_runs", metadata,
    Column("id", BigId, primary_key=True),
    Column("team_id", Integer, nullable=True, index=True),
    Column("preset_version_id", Integer, nullable=True, index=True),  # null: an ad-hoc prompt
    Column("source", String(16), nullable=False),  # playground | endpoint
    Column("created_by", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("prompt", JSON, nullable=False),  # the assembled text, or the chat messages
    Column("input", Text, nullable=False),
    Column("params", JSON, nullable=False),
    Column("output", Text, nullable=False, default=""),
    Column("latency_ms", Float, nullable=True),
    Column("prompt_tokens", Integer, nullable=True),
    Column("completion_tokens", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
)

#: OpenAI-compatible servers (vLLM, llama.cpp, another haneul) a team picks models from
endpoints = Table(
    "studio_endpoints", metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer, nullable=True, index=True),
    Column("name", String(64), nullable=False),  # unique per team; picked as "endpoint:NAME"
    Column("url", String(500), nullable=False),  # the base URL, ending in /v1
    Column("remote_model", String(200), nullable=False),  # the model name the server expects
    Column("context_window", Integer, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

#: queued -> running -> done | failed (the session failed or wrote no result)
BATCH_STATUSES = ("queued", "running", "done", "failed")

#: a preset version run over a dataset column as a platform session, and its score
batch_tests = Table(
    "studio_batch_tests", metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer, nullable=True, index=True),
    Column("preset_version_id", Integer, nullable=False, index=True),
    Column("dataset", String(600), nullable=False),  # NAME:VERSION/path, or upload:FILE
    Column("input_column", String(200), nullable=False),
    Column("expected_column", String(200), nullable=False),
    Column("label_map", JSON, nullable=True),  # {"0": "부정", "1": "긍정"}
    Column("n_rows", Integer, nullable=False),
    Column("metric", String(32), nullable=False),
    Column("score", Float, nullable=True),
    Column("rows_done", Integer, nullable=False, default=0),
    Column("session_id", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
)

#: a preset published as a test app: a page anyone with the share link may use (``token`` is the link's
#: secret; ``version`` null follows the preset's newest version)
apps = Table(
    "studio_apps", metadata,
    Column("id", Integer, primary_key=True),
    Column("token", String(64), nullable=False, unique=True),
    Column("team_id", Integer, nullable=True, index=True),
    Column("preset_id", Integer, nullable=False, index=True),
    Column("version", Integer, nullable=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("rate_per_minute", Integer, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

#: an API key for one preset's endpoint; only the key's sha256 is kept (the key is shown once)
keys = Table(
    "studio_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # the key's first characters, to tell keys apart
    Column("team_id", Integer, nullable=True, index=True),
    Column("preset_id", Integer, nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("rate_per_minute", Integer, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

#: a team's safety filter: a word list and an optional classifier by name, on input and/or output
filters = Table(
    "studio_filters", metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer, nullable=True, unique=True),
    Column("words", JSON, nullable=False),
    Column("classifier", String(100), nullable=True),
    Column("on_input", Boolean, nullable=False),
    Column("on_output", Boolean, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: a soft prompt learned from a preset's prompt on a labelled table (``accuracy``: zero-shot, k-shot in
#: context and tuned, on the held-out rows); once ``done`` it is the model ``ptune:NAME`` of its team
ptune_jobs = Table(
    "studio_ptune_jobs", metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer, nullable=True, index=True),
    Column("preset_version_id", Integer, nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("method", String(32), nullable=False),
    Column("base_model", String(200), nullable=False),
    Column("dataset", String(600), nullable=False),
    Column("n_train", Integer, nullable=False),
    Column("n_test", Integer, nullable=False),
    Column("session_id", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("accuracy", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
)
