"""A child tied to its parent stops when the parent is killed outright (SIGKILL, no cleanup)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

PARENT = """
import subprocess, sys, time
from runbooks.lifetime import stop_with_this_process
tied = sys.argv[1] == "tied"
child = subprocess.Popen(
    ["sleep", "120"],
    start_new_session=True,
    preexec_fn=stop_with_this_process() if tied else None,
)
print(child.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    """Dead or a zombie nobody reaps (PID 1 in a container may not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    return fields[0] == "Z"


def _child_of_killed_parent(mode: str) -> int:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no finally, no atexit
    parent.wait(timeout=10)
    return child


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_tied_child_stops_when_its_parent_is_killed():
    child = _child_of_killed_parent("tied")
    assert _wait_gone(child, 5)


def test_an_untied_child_runs_on_which_is_what_the_tie_prevents():
    child = _child_of_killed_parent("free")
    try:
        assert not _wait_gone(child, 0.5)
    finally:
        os.kill(child, signal.SIGKILL)
