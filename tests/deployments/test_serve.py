"""`runbook serve` refuses clearly what it cannot run, without leaving anything behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from runbooks.cli.serve import local_server_home
from tests.deployments.stack import ServedStack, free_port

pytestmark = pytest.mark.slow


def serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbooks.cli.main", "serve", *args],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_configured_prefect_api_that_does_not_answer_fails_in_one_line(tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    began = time.monotonic()
    done = serve("--no-deploy", env={"PREFECT_API_URL": url, "PREFECT_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert f"error: the Prefect API at {url} (PREFECT_API_URL) did not answer in 15s" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - began < 60


def test_port_out_of_range_is_bad_input(tmp_path) -> None:
    done = serve("--port", "70000", env={"PREFECT_HOME": str(tmp_path)})
    assert done.returncode == 2
    assert "error: --port 70000 is not a TCP port (1-65535)" in done.stderr


def test_a_local_server_keeps_its_data_in_the_state_dir(tmp_path) -> None:
    state = tmp_path / "state"
    stack = ServedStack(None, {"RUNBOOK_STATE_DIR": str(state)}, ["--no-deploy", "--no-listener"])
    try:
        stack.wait_ready()
        assert f"[serve] Prefect server data in {state / 'prefect'} (PREFECT_HOME)" in stack.lines
    finally:
        code, _ = stack.stop()
    assert code == 0, stack.tail()
    assert (state / "prefect" / "prefect.db").is_file()


def test_prefect_home_given_by_the_operator_wins(tmp_path) -> None:
    mine = {"PREFECT_HOME": "/srv/prefect"}
    assert local_server_home(mine, tmp_path) == mine
    assert local_server_home({}, tmp_path) == {"PREFECT_HOME": str(tmp_path / "prefect")}
