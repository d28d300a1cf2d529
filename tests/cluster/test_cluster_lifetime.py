"""A test session's cluster does not outlive the session, even when pytest is killed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_lifetime import _gone

pytestmark = pytest.mark.cluster

SESSION = """
import json, time
from runbooks.cluster import launcher
record = launcher.up(name="killed-session", nodes=1, stop_with_caller=True)
print(json.dumps(record.pids), flush=True)
time.sleep(300)
"""


def test_components_stop_when_the_process_that_started_them_is_killed(tmp_path: Path) -> None:
    env = {**os.environ, "RUNBOOK_STATE_DIR": str(tmp_path)}
    session = subprocess.Popen(
        [sys.executable, "-c", SESSION],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert session.stdout is not None
    pids: dict[str, int] = json.loads(session.stdout.readline())
    assert set(pids) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
    assert not any(_gone(pid) for pid in pids.values())

    session.kill()  # SIGKILL: the launcher's own cleanup never runs
    session.wait(timeout=10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(_gone(pid) for pid in pids.values()):
        time.sleep(0.2)
    running = {name: pid for name, pid in pids.items() if not _gone(pid)}
    for pid in running.values():  # do not leave them behind if the test fails
        os.kill(pid, 9)
    assert not running, f"still running after their starter was killed: {running}"
