"""One eviction through the Eviction API, and what its answer means for the drain.

Answers (kubernetes.io "API-initiated eviction"): 2xx evicted; 404 already gone; 409 the UID
precondition failed, so the pod we meant is gone (a StatefulSet pod recreated under its name is
not ours to evict); 429 either a PodDisruptionBudget (named in the causes) or API rate limiting;
500 with several budgets on the pod is a misconfiguration no retry fixes; other 5xx and network
errors are transient.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.maintenance.facts import PodRef
from tasks.kube.retry import describe_error, is_transient

_BUDGET_NAME = re.compile(r"disruption budget ([a-z0-9]([-a-z0-9.]*[a-z0-9])?)")


class Answer(StrEnum):
    EVICTED = "evicted"
    GONE = "gone"
    BUDGET = "blocked-by-budget"
    THROTTLED = "throttled"  # 429 rate limiting, or a transient failure
    FAILED = "failed"
    NOT_SENT = "not-sent"  # the run is stopping (interrupted, Lease lost): nothing was asked


@dataclass
class EvictionResult:
    answer: Answer
    message: str = ""
    budget: str | None = None  # name of the blocking PodDisruptionBudget (in the pod's namespace)
    retry_after: float | None = None


def evict(core: client.CoreV1Api, pod: PodRef, grace_period: int | None = None) -> EvictionResult:
    options = client.V1DeleteOptions(
        grace_period_seconds=grace_period,
        preconditions=client.V1Preconditions(uid=pod.uid) if pod.uid else None,
    )
    body = client.V1Eviction(
        metadata=client.V1ObjectMeta(name=pod.name, namespace=pod.namespace),
        delete_options=options,
    )
    try:
        core.create_namespaced_pod_eviction(name=pod.name, namespace=pod.namespace, body=body)
    except ApiException as exc:
        return _answer(exc)
    except Exception as exc:
        if is_transient(exc):
            return EvictionResult(Answer.THROTTLED, describe_error(exc))
        raise
    return EvictionResult(Answer.EVICTED)


def _answer(exc: ApiException) -> EvictionResult:
    status = _status_body(exc)
    message = str(status.get("message") or exc.reason)
    causes = (status.get("details") or {}).get("causes") or []
    if exc.status in (404, 409):
        return EvictionResult(Answer.GONE, message)
    if exc.status == 429:
        for cause in causes:
            if cause.get("reason") == "DisruptionBudget":
                text = str(cause.get("message", ""))
                found = _BUDGET_NAME.search(text)
                return EvictionResult(Answer.BUDGET, text, budget=found.group(1) if found else None)
        if "disruption budget" in message.lower():
            return EvictionResult(Answer.BUDGET, message)
        return EvictionResult(Answer.THROTTLED, message, retry_after=_retry_after(exc))
    if exc.status == 403 and "being terminated" in message:
        return EvictionResult(Answer.THROTTLED, message)  # namespace terminating: retry
    if exc.status == 500 and "more than one" in message.lower():
        return EvictionResult(Answer.FAILED, message)
    if is_transient(exc):
        return EvictionResult(Answer.THROTTLED, f"HTTP {exc.status}: {message}")
    return EvictionResult(Answer.FAILED, f"HTTP {exc.status}: {message}")


def _status_body(exc: ApiException) -> dict:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(exc: ApiException) -> float | None:
    value = (exc.headers or {}).get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None
