"""How a runbook's steps run: as Prefect tasks inside a flow run, or as plain calls in threads.

A runbook's flow is written once against ``StepRunner``. Under Prefect (a deployment, the UI, a
flow served by a worker) each step is a task run the UI shows by name and artifacts are published;
without a Prefect API the CLI calls the same task bodies directly, one thread per concurrent step,
so ``runbook <x>`` starts like kubectl instead of waiting for a temporary server.

A step that raises does not stop the others: ``run_all`` returns its exception as its result, and
the runbook decides what a failure means (a failed check, a node left cordoned).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from prefect.exceptions import MissingContextError, TerminationSignal
from prefect.futures import wait as wait_for_futures

from runbooks.audit import carried
from tasks.kube.retry import INTERRUPT

# How a run is stopped from outside: Ctrl-C (or SIGTERM, which the CLI turns into Ctrl-C), or
# SIGTERM under Prefect's engine (a cancel in the UI, a worker or pod shutting down).
STOPPED = (KeyboardInterrupt, TerminationSignal)


class Step(Protocol):
    """A Prefect task: callable, with ``.fn`` (the plain function), ``.name`` and ``.submit``."""

    name: str
    fn: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def submit(self, *args: Any, **kwargs: Any) -> Any: ...


Call = tuple[Step, Mapping[str, Any]]


class StepRunner:
    """Runs a runbook's steps and publishes what it wants shown; see the module docstring."""

    run_id: str
    flow_run_id: str | None = None
    in_prefect: bool = False

    @property
    def log(self) -> logging.Logger | logging.LoggerAdapter:
        try:
            from prefect.logging import get_run_logger

            return get_run_logger()
        except MissingContextError:
            return logging.getLogger("kube_runbooks")

    def call(self, step: Step, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def run_all(self, calls: Mapping[str, Call]) -> dict[str, Any]:
        """Run every call at once; each key's result, or the exception it raised."""
        raise NotImplementedError

    def each(
        self,
        step: Step,
        keys: list[str],
        *,
        key_arg: str = "node",
        per_key: Mapping[str, Mapping[str, Any]] | None = None,
        **common: Any,
    ) -> dict[str, Any]:
        """One step for many keys (nodes, checks) at once: ``step(**{key_arg: key}, ...)``."""
        per_key = per_key or {}
        return self.run_all({k: (step, {key_arg: k, **common, **per_key.get(k, {})}) for k in keys})

    def publish_markdown(self, key: str, markdown: str, description: str) -> None:
        """A markdown artifact on the flow run (nothing without Prefect: the CLI prints)."""

    def publish_table(self, key: str, rows: list[dict[str, Any]], description: str) -> None:
        """A table artifact on the flow run (nothing without Prefect)."""


class PrefectRunner(StepRunner):
    """Inside a flow run: steps are task runs, results are artifacts."""

    in_prefect = True

    def __init__(self) -> None:
        from prefect.runtime import flow_run

        self.flow_run_id = str(flow_run.id) if flow_run.id else None
        self.run_id = self.flow_run_id or f"local-{uuid.uuid4().hex[:12]}"

    def call(self, step: Step, *args: Any, **kwargs: Any) -> Any:
        return step(*args, **kwargs)

    def run_all(self, calls: Mapping[str, Call]) -> dict[str, Any]:
        futures = {k: step.submit(**kwargs) for k, (step, kwargs) in calls.items()}
        try:
            return {k: _result_or_exception(f) for k, f in futures.items()}
        except STOPPED:
            INTERRUPT.set()  # the steps in flight stop at their next turn,
            wait_for_futures(list(futures.values()))  # and stop before the run ends
            raise

    def publish_markdown(self, key: str, markdown: str, description: str) -> None:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(key=key, markdown=markdown, description=description)

    def publish_table(self, key: str, rows: list[dict[str, Any]], description: str) -> None:
        from prefect.artifacts import create_table_artifact

        create_table_artifact(key=key, table=rows, description=description)


def _result_or_exception(future: Any) -> Any:
    try:
        return future.result(raise_on_failure=False)
    except STOPPED:
        raise
    except Exception as exc:  # a failed task run's exception, as its result
        return exc


class LocalRunner(StepRunner):
    """No Prefect API: the task bodies, called directly, one thread per concurrent step."""

    def __init__(self, max_workers: int = 32) -> None:
        self.run_id = f"local-{uuid.uuid4().hex[:12]}"
        self.max_workers = max_workers

    def call(self, step: Step, *args: Any, **kwargs: Any) -> Any:
        return step.fn(*args, **kwargs)

    def run_all(self, calls: Mapping[str, Call]) -> dict[str, Any]:
        if not calls:
            return {}

        def one(step: Step, kwargs: Mapping[str, Any]) -> Any:
            try:
                return step.fn(**kwargs)
            except Exception as exc:
                return exc

        pool = ThreadPoolExecutor(max_workers=min(self.max_workers, len(calls)))
        try:
            futures = {
                k: pool.submit(carried(one), step, kwargs)  # keeps the audit context
                for k, (step, kwargs) in calls.items()
            }
            return {k: f.result() for k, f in futures.items()}
        except STOPPED:
            INTERRUPT.set()  # the steps in flight stop at their next turn
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def current_runner() -> StepRunner:
    """A ``PrefectRunner`` inside a flow run, else a ``LocalRunner``."""
    from prefect.context import FlowRunContext

    return PrefectRunner() if FlowRunContext.get() is not None else LocalRunner()
