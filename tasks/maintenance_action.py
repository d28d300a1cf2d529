"""The maintenance done to a drained node: nothing, a local command, or a Job on the node.

(`manual` is a pause of the whole flow, so the flow does it, not a task.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

from runbooks.kit.durations import format_duration
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.params import MaintenanceAction
from runbooks.operator_config import load_operator_config
from tasks import audit
from tasks.kube.jobs import render_job, run_job
from tasks.kube.kwok_kubelet import report_kubelet_version
from tasks.kube.retry import INTERRUPT, LEASE_LOST, stop_reason

OUTPUT_KEPT = 4000  # characters of stdout/stderr kept in the report and the audit trail


class ActionFailed(RuntimeError):
    pass


def run_command(argv: list[str], timeout: float) -> str:
    """Run without a shell; non-zero exit, timeout or an interrupt raises ActionFailed with the
    output tail. An interrupted run stops the command (its process group): the node stays
    cordoned and a rerun runs the action again, so the action must be safe to repeat."""
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # so stopping it reaches what it started (ssh, scripts)
        )
    except FileNotFoundError:
        raise ActionFailed(f"command not found: {argv[0]}") from None
    command = " ".join(argv)
    deadline = time.monotonic() + timeout
    while True:
        try:
            output, _ = process.communicate(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            break
        except subprocess.TimeoutExpired:  # retrying communicate() loses no output
            if INTERRUPT.is_set():
                why = "was stopped: the run was interrupted"
            elif LEASE_LOST.is_set():  # as for an interrupt: the run must stop changing things
                why = f"was stopped: {stop_reason()}"
            elif time.monotonic() >= deadline:
                why = f"timed out after {format_duration(timeout)}"
            else:
                continue
            output = _stop(process)
            raise ActionFailed(f"command {command} {why}; output: {_tail(output)}") from None
    if process.returncode != 0:
        raise ActionFailed(
            f"command {command} exited {process.returncode}; output: {_tail(output) or '(none)'}"
        )
    return _tail(output)


def _stop(process: subprocess.Popen[str], grace: float = 10) -> str:
    """SIGTERM to the command's process group, SIGKILL after ``grace``; what it printed."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            output, _ = process.communicate(timeout=wait)
            return output or ""
        except subprocess.TimeoutExpired:
            continue
    return ""


def _tail(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= OUTPUT_KEPT else "..." + text[-OUTPUT_KEPT:]


def perform(target: KubeTarget, node: str, action: MaintenanceAction, run_id: str) -> str:
    """Do ``action`` to ``node``; returns what it printed or reported."""
    details = {"kind": action.kind, "command": action.command, "run_id": run_id}
    with audit.audited("maintenance.action", node, details=details) as outcome:
        # The flow refused it before the plan already; checked again where it runs, so no
        # other caller (or a configuration changed since) runs what the operator did not allow.
        refusal = load_operator_config().action_refusal(
            action.kind, action.argv("{node}"), action.job_image
        )
        if refusal:
            raise ActionFailed(refusal)
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
        elif action.kind == "kubelet-version" and action.kubelet_version:
            result = report_kubelet_version(target, node, action.kubelet_version)
        else:
            raise ValueError(f"action {action.kind} is not run by a task")
        outcome["output"] = result
        return result
