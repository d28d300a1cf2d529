"""`runbook serve` as a test starts it: a real process tree, watched through its own output."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

STARTED = re.compile(r"^\[serve\] started (\w+) \(pid (\d+)\)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"


class ServedStack:
    """One `runbook serve` started by a test, with the PIDs of the children it reports."""

    def __init__(self, home: Path | None, extra_env: dict[str, str], args: list[str]) -> None:
        """``home``: PREFECT_HOME for the stack; None leaves it to `runbook serve`."""
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLACK_"))}
        env |= {
            **({"PREFECT_HOME": str(home)} if home is not None else {}),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_RUNNER_POLL_FREQUENCY": "2",
            **extra_env,
        }
        self.lines: list[str] = []
        self.children: dict[str, int] = {}
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runbooks.cli.main", "serve", "--port", str(self.port), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip())
            started = STARTED.match(line)
            if started:
                self.children[started.group(1)] = int(started.group(2))
            if line.startswith("[serve] ready:"):
                self.ready.set()

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("runbook serve did not get ready:\n" + self.tail(40))

    def tail(self, n: int = 20) -> str:
        return "\n".join(self.lines[-n:])

    def stop(self, timeout: float = 90) -> tuple[int, float]:
        """SIGTERM, as systemd or Kubernetes would send; returns (exit code, seconds taken)."""
        began = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, time.monotonic() - began
