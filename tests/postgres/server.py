"""A private PostgreSQL server for tests, from Debian's `postgresql` package binaries.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (via
runuser) in a temporary directory it owns. It listens on 127.0.0.1 and a private socket dir
only, and is stopped by its PID.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "runbook"


class PostgresUnavailable(RuntimeError):
    """The server binaries are not installed: tests that need them skip with this message."""


def find_bin_dir() -> Path:
    """`RUNBOOK_PG_BIN`, else the newest /usr/lib/postgresql/<version>/bin with initdb."""
    explicit = os.environ.get("RUNBOOK_PG_BIN")
    candidates = [Path(explicit)] if explicit else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bin_dir in candidates:
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return bin_dir
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb): "
        "apt-get install postgresql, or set RUNBOOK_PG_BIN"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    port: int
    pid: int
    root: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        dsn = f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


@contextmanager
def running_postgres(fsync: bool = False) -> Iterator[PostgresServer]:
    """Start a throwaway server (initdb, pg_ctl start); stop it by PID and delete it after.

    ``fsync=False`` suits tests; benchmarks pass True to measure what production pays.
    """
    bin_dir = find_bin_dir()
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="kube-runbooks-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if owner:
        entry = pwd.getpwnam(owner)
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    pid = 0
    try:
        subprocess.run(
            _as_owner(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                owner,
            ),
            check=True,
            capture_output=True,
        )
        port = _free_port()
        options = f"-k {sockets} -c listen_addresses=127.0.0.1 -p {port}"
        if not fsync:
            options += " -c fsync=off"
        subprocess.run(
            _as_owner(
                [
                    str(bin_dir / "pg_ctl"),
                    "start",
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                ],
                owner,
            ),
            check=True,
            capture_output=True,
        )
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        yield PostgresServer(port=port, pid=pid, root=root)
    finally:
        if pid:
            _stop(pid)
        shutil.rmtree(root, ignore_errors=True)


def _stop(pid: int) -> None:
    """Fast shutdown (SIGINT to the postmaster), then SIGKILL if it lingers."""
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
