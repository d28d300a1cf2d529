"""Bad input to any `runbook` command: exit 2, one line on stderr saying what was wrong and what
is allowed, nothing changed (no audit record). Never a traceback (issue 10, item 9).

In-process through the real CLI; none of these rows may reach a cluster (the kubeconfig named
does not exist, so a row that got that far would fail with a different message). Rows that
need a live control plane are in tests/cluster/test_maintenance_cli.py.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runbooks.audit.schema import records
from runbooks.cli.main import app

NO_CLUSTER = ["--kubeconfig", "/nonexistent/kubeconfig"]
MAINTAIN = ["maintain", "worker-1", *NO_CLUSTER]


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state dir of the test's own, the default audit store in it; SIGTERM restored after
    (`maintain` installs a handler once its input is accepted)."""
    from runbooks.settings import get_settings

    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("RUNBOOK_AUDIT_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    get_settings.cache_clear()
    handler = signal.getsignal(signal.SIGTERM)
    yield tmp_path
    signal.signal(signal.SIGTERM, handler)
    get_settings.cache_clear()


def audit_records(state: Path) -> int:
    """Records in the default store (0 when it was never created)."""
    path = state / "audit.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if records.name not in tables:
            return 0
        return int(db.execute(f"SELECT count(*) FROM {records.name}").fetchone()[0])


def assert_one_line_exit_2(args: list[str], message: str, state: Path) -> None:
    result = CliRunner().invoke(app, args)

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2, result.stderr or repr(result.exception)
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output
    assert audit_records(state) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # durations: too long to mean anything (OverflowError before), in each form
        ([*MAINTAIN, "--drain-timeout", "99999999999999d"], "too long: at most 365d"),
        ([*MAINTAIN, "--ready-timeout", "99999999999999999999"], "too long: at most 365d"),
        ([*MAINTAIN, "--action-timeout", "1000000000d"], "too long: at most 365d"),
        ([*MAINTAIN, "--lease-duration", "400d"], "too long: at most 365d"),
        ([*MAINTAIN, "--blocked-max-wait", "P400D"], "too long: at most 365d"),
        ([*MAINTAIN, "--drain-timeout", "P99999999999D"], "drain-timeout"),
        ([*MAINTAIN, "--drain-timeout", "1e9"], "cannot read duration"),
        # seconds counts that no API or timer accepts
        ([*MAINTAIN, "--grace-period", "99999999999999999999"], "grace-period"),
        ([*MAINTAIN, "--skip-wait-for-delete-timeout", "99999999999999999999"], "skip-wait"),
        # blocker URLs that could never be asked
        ([*MAINTAIN, "--prometheus-url", "not-a-url"], "http:// or https://"),
        ([*MAINTAIN, "--alertmanager-url", "ftp://am:9093"], "http:// or https://"),
        # a pod selector the API would refuse blocked every batch until --blocked-max-wait
        ([*MAINTAIN, "--block-on-pods", "a!b"], "not a label selector requirement: 'a!b'"),
        ([*MAINTAIN, "--block-on-pods", "app in (a,b"], "not a label selector requirement"),
        # already refused in one line: kept here so they stay that way
        ([*MAINTAIN, "--deadline", "2026-13-45"], "deadline"),
        ([*MAINTAIN, "--max-unavailable", "-1"], "neither a count"),
        ([*MAINTAIN, "--output", "yaml"], "--output must be text or json"),
        ([*MAINTAIN, "--action", "command", "--command", "'open"], "cannot split command"),
    ],
)
def test_maintain_refuses_bad_flags_in_one_line(args, message, state_dir):
    assert_one_line_exit_2(args, message, state_dir)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "show", "--since", "99999999999999d"], "--since '99999999999999d' is too far"),
        (["audit", "show", "--since", "999999d"], "--since '999999d' is too far"),
        (["audit", "show", "--until", "99999999999d"], "--until '99999999999d' is too far"),
        (["audit", "export", "--since", "99999999999w"], "--since '99999999999w' is too far"),
        (["audit", "show", "--day", "9999-12-31"], "--day '9999-12-31' is too far ahead"),
        (["audit", "show", "--last", "99999999999999999999"], "--last 99999999999999999999"),
        (["audit", "show", "--last", "0"], "--last 0"),
        (["history", "--limit", "99999999999999999999"], "from 1 to 200"),
    ],
)
def test_audit_and_history_refuse_out_of_range_times_and_counts(args, message, state_dir):
    assert_one_line_exit_2(args, message, state_dir)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+asyncpg://u@127.0.0.1/db", "only sqlite:/// and postgresql://"),
        ("postgresql+psycopg2://u@127.0.0.1/db", "only sqlite:/// and postgresql://"),
        ("mysql://u@127.0.0.1/db", "only sqlite:/// and postgresql://"),
        ("not a url", "is not a SQLAlchemy URL"),
    ],
)
@pytest.mark.parametrize("command", [["audit", "show"], ["history"], MAINTAIN])
def test_an_unusable_audit_url_is_bad_input(command, url, message, state_dir, monkeypatch):
    monkeypatch.setenv("RUNBOOK_AUDIT_URL", url)

    assert_one_line_exit_2(command, message, state_dir)


@pytest.mark.parametrize("command", [["audit", "verify"], ["history"], MAINTAIN])
def test_a_postgresql_url_without_its_driver_says_to_install_the_extra(
    command, state_dir, monkeypatch
):
    monkeypatch.setenv("RUNBOOK_AUDIT_URL", "postgresql+psycopg://u@127.0.0.1/db")
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if kube-runbooks[postgres] were not

    assert_one_line_exit_2(command, "pip install 'kube-runbooks[postgres]'", state_dir)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cluster", "up", "--name", "../../etc"], "'../../etc' is not a cluster name"),
        (["cluster", "down", "--name", "a/b"], "'a/b' is not a cluster name"),
        (["cluster", "status", "--name", ".."], "'..' is not a cluster name"),
        (["cluster", "node", "worker-1", "--name", "Prod Cluster"], "is not a cluster name"),
        (["serve", "--grace", "nan"], "--grace nan"),
        (["serve", "--grace", "-1"], "--grace -1.0"),
        (["serve", "--grace", "inf"], "--grace inf"),
        (["serve", "--listen-http", "garbage"], "--listen-http wants HOST:PORT or PORT"),
        (["serve", "--listen-http", "127.0.0.1:70000"], "--listen-http wants HOST:PORT or PORT"),
        (["listen", "--http", "abc"], "--http wants HOST:PORT or PORT"),
    ],
)
def test_cluster_serve_and_listen_refuse_bad_flags_before_starting_anything(
    args, message, state_dir
):
    assert_one_line_exit_2(args, message, state_dir)
    assert not (state_dir / "clusters").exists() or not any((state_dir / "clusters").iterdir())


def test_a_state_dir_that_cannot_hold_a_cluster_is_one_line_exit_1(tmp_path):
    """Not bad input but the environment: exit 1, one error line naming the path (after the
    launcher's progress lines). A real process: the launcher hands its stderr to children."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**os.environ, "RUNBOOK_STATE_DIR": str(blocker / "state")}
    runbook = str(Path(sys.executable).with_name("runbook"))

    done = subprocess.run(
        [runbook, "cluster", "up", "--name", "never"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("[")]
    assert errors == [f"error: [Errno 20] Not a directory: '{blocker}/state/clusters/never/logs'"]
