"""Engine settings from the environment (``RUNBOOK_*``), so every entry point agrees on paths."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runbooks.private_paths import private_dir


def _default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "kube-runbooks"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "kube-runbooks"


class Settings(BaseSettings):
    """Where the engine keeps its own files and how it reaches its stores."""

    model_config = SettingsConfigDict(env_prefix="RUNBOOK_", extra="ignore")

    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="The engine's own files: local clusters, audit database, locks. "
        "Created 0700 (and tightened to 0700 if this user owns it and it is not a shared "
        "sticky directory such as /tmp).",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Build caches (cluster binaries), keyed by version.",
    )
    node_name: str | None = Field(
        default=None,
        description="The node this process runs on (in a pod: the downward API's spec.nodeName). "
        "Maintenance skips it: draining it would evict the run itself.",
    )
    audit_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the audit store; default a SQLite file in the state dir.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, read once; the state dir is made private here, before anything (the audit
    store, a local cluster's keys, Prefect's home) is written into it."""
    settings = Settings()
    # Best effort: where it cannot be created (a read-only root in a pod), nothing is written
    # there either, and whatever tries says why.
    with contextlib.suppress(OSError):
        private_dir(settings.state_dir)
    return settings
