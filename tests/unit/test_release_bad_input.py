"""`runbook release` given nothing sensible: one line, exit 2, no cluster contacted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUNBOOK = str(Path(sys.executable).with_name("runbook"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name the nodes to release, or give --selector, or --all"),
        (["n1", "--output", "yaml"], "--output must be text or json"),
        (["n1", "--lease-namespace", "Not_A_Namespace"], "--lease-namespace"),
        (["n1", "--kubeconfig", "/nonexistent/kubeconfig"], "/nonexistent/kubeconfig"),
    ],
)
def test_release_with_bad_input_exits_2_with_one_line(args, message):
    done = subprocess.run(
        [RUNBOOK, "release", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
