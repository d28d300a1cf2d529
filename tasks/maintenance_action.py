"""The maintenance done to a drained node: nothing, a local command, or a Job on the node.

(`manual` is a pause of the whole flow, so the flow does it, not a task.)
"""

from __future__ import annotations

import subprocess

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.durations import format_duration
from runbooks.maintenance.params import MaintenanceAction
from tasks import audit
from tasks.kube.jobs import render_job, run_job

OUTPUT_KEPT = 4000  # characters of stdout/stderr kept in the report and the audit trail


class ActionFailed(RuntimeError):
    pass


def run_command(argv: list[str], timeout: float) -> str:
    """Run without a shell; non-zero exit or timeout raises ActionFailed with the output tail."""
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ActionFailed(f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired as exc:
        out = _tail((exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout)
        raise ActionFailed(
            f"command {' '.join(argv)} timed out after {format_duration(timeout)}; output: {out}"
        ) from None
    output = _tail((done.stdout or "") + (done.stderr or ""))
    if done.returncode != 0:
        raise ActionFailed(
            f"command {' '.join(argv)} exited {done.returncode}; output: {output or '(none)'}"
        )
    return output


def _tail(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= OUTPUT_KEPT else "..." + text[-OUTPUT_KEPT:]


def perform(target: KubeTarget, node: str, action: MaintenanceAction, run_id: str) -> str:
    """Do ``action`` to ``node``; returns what it printed or reported."""
    details = {"kind": action.kind, "command": action.command, "run_id": run_id}
    with audit.audited("maintenance.action", node, details=details) as outcome:
        timeout = action.timeout.total_seconds()
        if action.kind == "none":
            result = ""
        elif action.kind == "command":
            result = run_command(action.argv(node), timeout)
        elif action.kind == "job":
            command = action.argv(node) or ["/bin/true"]
            manifest = render_job(
                node, run_id, action.job_namespace, action.job_image, command, timeout
            )
            result = run_job(target, manifest, timeout)
        else:
            raise ValueError(f"action {action.kind} is not run by a task")
        outcome["output"] = result
        return result
