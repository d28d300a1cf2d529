"""The engine's own files (the audit trail and approvals: plans, actors, decisions; the local
clusters' keys) are readable by their owner only: the state dir 0700, the SQLite files 0600,
whatever the umask, and looser modes left by older versions are tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks.audit import AuditStore, NewRecord
from runbooks.settings import get_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state dir that does not exist yet, under a umask that leaves files world-readable."""
    state = tmp_path / "home" / ".local" / "state" / "kube-runbooks"
    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(state))
    monkeypatch.delenv("RUNBOOK_AUDIT_URL", raising=False)
    old = os.umask(0o022)
    get_settings.cache_clear()
    try:
        yield state
    finally:
        os.umask(old)
        get_settings.cache_clear()


def _record() -> NewRecord:
    return NewRecord(
        runbook="rolling-node-maintenance",
        actor="alice",
        flow_run_id="run-1",
        action="node.cordon",
        target="worker-1",
    )


def _write_audit_record() -> AuditStore:
    store = AuditStore()  # the default: SQLite in the state dir, as `runbook maintain` opens it
    store.append(_record())
    return store


def test_first_audit_write_creates_the_state_dir_0700_and_the_database_0600(
    state_dir: Path,
) -> None:
    store = _write_audit_record()
    try:
        assert mode(state_dir) == 0o700
        database = state_dir / "audit.db"
        assert mode(database) == 0o600
        for sibling in state_dir.iterdir():  # the WAL and shared-memory files follow the database
            if sibling.name.startswith("audit.db-"):
                assert mode(sibling) == 0o600, sibling.name
    finally:
        store.dispose()


def test_an_existing_world_readable_state_dir_and_database_are_tightened(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, mode=0o755)
    state_dir.chmod(0o755)
    first = _write_audit_record()
    first.dispose()
    (state_dir / "audit.db").chmod(0o644)
    get_settings.cache_clear()

    store = _write_audit_record()
    try:
        assert mode(state_dir) == 0o700
        assert mode(state_dir / "audit.db") == 0o600
        assert len(store.records()) == 2  # the data survived the tightening
    finally:
        store.dispose()


def test_a_shared_sticky_directory_is_never_narrowed(tmp_path: Path, monkeypatch) -> None:
    """RUNBOOK_STATE_DIR=/tmp by mistake must not lock every other user out of /tmp."""
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(shared))
    get_settings.cache_clear()
    try:
        assert get_settings().state_dir == shared
        assert mode(shared) == 0o1777
    finally:
        get_settings.cache_clear()


def test_a_database_path_that_cannot_be_created_gives_the_stores_own_error(
    tmp_path: Path,
) -> None:
    """Making files private never turns a bad path into a traceback of its own."""
    from runbooks.audit.store import AuditStoreError

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = AuditStore(f"sqlite:///{blocker / 'sub' / 'audit.db'}")
    with pytest.raises(AuditStoreError, match="audit store"):
        store.append(_record())
