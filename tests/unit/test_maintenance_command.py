"""The command action as an operator meets it: its output, its exit, its timeout, and what
happens to it when the run is interrupted (real processes, no cluster)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.kube.retry import INTERRUPT
from tasks.maintenance_action import ActionFailed, run_command
from tests.unit.test_lifetime import _gone


@pytest.fixture(autouse=True)
def no_interrupt() -> Iterator[None]:
    INTERRUPT.clear()
    yield
    INTERRUPT.clear()


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def test_output_of_a_command_that_succeeds_is_kept():
    assert run_command(sh("echo patched; echo warning >&2"), 10) == "patched\nwarning"


def test_a_failing_command_fails_the_action_with_its_exit_and_output():
    with pytest.raises(ActionFailed, match=r"exited 3; output: no disk"):
        run_command(sh("echo no disk; exit 3"), 10)


def test_an_unknown_command_is_named():
    with pytest.raises(ActionFailed, match="command not found: no-such-tool"):
        run_command(["no-such-tool"], 10)


def test_a_command_past_its_timeout_is_stopped_with_what_it_printed():
    started = time.monotonic()
    with pytest.raises(ActionFailed, match=r"timed out after 1s; output: started"):
        run_command(sh("echo started; sleep 60"), 1)
    assert time.monotonic() - started < 5


def test_an_interrupted_run_stops_the_command_and_what_it_started(tmp_path: Path):
    pid_file = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pid_file}; echo upgrading; wait"
    threading.Timer(1.0, INTERRUPT.set).start()
    started = time.monotonic()
    with pytest.raises(ActionFailed, match=r"was stopped: the run was interrupted; output: upgr"):
        run_command(sh(script), 600)
    assert time.monotonic() - started < 5  # not the command's 600 s
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child), "the command's own child (its process group) was left running"


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(monkeypatch):
    import tasks.maintenance_action as action

    real_stop = action._stop
    monkeypatch.setattr(action, "_stop", lambda process: real_stop(process, grace=0.5))
    started = time.monotonic()
    with pytest.raises(ActionFailed, match="timed out"):
        run_command(sh("trap '' TERM; echo stubborn; sleep 60"), 1)
    assert time.monotonic() - started < 5
