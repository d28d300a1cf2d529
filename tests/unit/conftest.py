"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks.audit import AuditStore, get_store


@pytest.fixture
def audit_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditStore]:
    """A fresh SQLite audit store, the one ``record`` writes to (RUNBOOK_AUDIT_URL)."""
    from runbooks.settings import get_settings

    monkeypatch.setenv("RUNBOOK_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    get_settings.cache_clear()
    yield get_store()
    get_settings.cache_clear()
