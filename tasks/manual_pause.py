"""A manual maintenance action: pause the run until a person says the work on the nodes is done.

Only a Prefect flow run can pause (the person resumes it in the UI with a form), so a run
without a Prefect API refuses a manual action before anything changes.
"""

from __future__ import annotations

from tasks.audit import record
from tasks.steps import StepRunner

UNAVAILABLE = (
    "the manual action pauses the run until a person resumes it in the Prefect UI: "
    "set PREFECT_API_URL to a Prefect server"
)


def manual_unavailable(runner: StepRunner) -> str | None:
    """Why a manual action cannot be waited for with ``runner`` (None when it can)."""
    return None if runner.in_prefect else UNAVAILABLE


def wait_for_manual_work(nodes: list[str], timeout: float) -> str | None:
    """Pause the flow run until resumed with *done* ticked; the reason to halt if not."""
    from prefect.flow_runs import pause_flow_run
    from prefect.input import RunInput
    from prefect.runtime import flow_run

    class ManualDone(RunInput):
        done: bool = False  # fail closed: an empty resume is not a confirmation
        note: str = ""

    listed = ", ".join(nodes)
    description = (
        f"Nodes **{listed}** are cordoned and drained. Do the maintenance, then resume "
        "with *done* ticked. Resuming without it halts the rollout (nodes stay cordoned)."
    )
    answer = pause_flow_run(
        wait_for_input=ManualDone.with_initial_data(description=description),
        timeout=int(timeout),
        poll_interval=2,
        key=f"manual-{nodes[0]}-{flow_run.run_count}".lower().replace(".", "-")[:60],
    )
    if not answer.done:
        return f"the person resuming did not confirm the work as done ({answer.note or 'no note'})"
    record("maintenance.manual-done", listed, details={"note": answer.note})
    return None
