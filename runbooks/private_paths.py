"""The engine's own files are its owner's alone: directories 0700, files 0600.

The audit trail and approvals hold plans, actors and decisions; the state dir also holds the
local clusters' private keys. Created with these modes whatever the umask, and tightened when an
older version left them looser, but only when this user owns them, and never a shared sticky
directory such as /tmp (RUNBOOK_STATE_DIR=/tmp by mistake must not lock other users out).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: Path, wanted: int) -> None:
    """chmod ``path`` to ``wanted`` if it is ours, looser than that, and not a shared dir."""
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & stat.S_ISVTX:
        return
    if stat.S_IMODE(info.st_mode) & ~wanted:
        path.chmod(wanted)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) so that it is 0700; tighten it if it exists."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)  # the umask may have widened it
    _tighten(path, DIR_MODE)
    return path


def private_files(*paths: Path) -> None:
    """Create each file empty with mode 0600 if missing (SQLite takes an empty file as a new
    database, and its -wal/-shm/-journal files copy the database's mode); tighten existing
    ones. A missing parent directory is created 0700; an existing one is left as it is.

    Best effort: where a file cannot be made (no such directory and no right to create it, a
    read-only disk), whoever opens it next fails for the same reason and says so; nothing is
    created with a looser mode here."""
    for path in map(Path, paths):
        with contextlib.suppress(OSError):
            _make_private_file(path)


def _make_private_file(path: Path) -> None:
    if not path.parent.exists():
        private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _tighten(path, FILE_MODE)
    for suffix in ("-wal", "-shm", "-journal"):
        sibling = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            _tighten(sibling, FILE_MODE)
