"""What each Eviction API answer means for the drain (answers as the apiserver sends them)."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.rest import ApiException

from tasks.kube.eviction import Answer, _answer
from tasks.kube.retry import is_transient, retrying


def api_error(status: int, message: str, causes: list | None = None, headers=None) -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.body = json.dumps(
        {"kind": "Status", "message": message, "code": status, "details": {"causes": causes or []}}
    )
    exc.headers = headers or {}
    return exc


PDB_429 = api_error(
    429,
    "Cannot evict pod as it would violate the pod's disruption budget.",
    [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget api-pdb needs 2 healthy pods and has 2 currently",
        }
    ],
)
UNOBSERVED_429 = api_error(
    429,
    "Cannot evict pod as it would violate the pod's disruption budget.",
    [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget web-pdb is still being processed by the server.",
        }
    ],
)


@pytest.mark.parametrize(
    ("exc", "answer", "budget"),
    [
        (PDB_429, Answer.BUDGET, "api-pdb"),
        (UNOBSERVED_429, Answer.BUDGET, "web-pdb"),
        (
            api_error(
                429, "Too many requests, please try again later.", headers={"Retry-After": "2"}
            ),
            Answer.THROTTLED,
            None,
        ),
        (api_error(404, 'pods "web-1" not found'), Answer.GONE, None),
        (
            api_error(409, "Precondition failed: UID in precondition: a, UID in object meta: b"),
            Answer.GONE,
            None,
        ),
        (
            api_error(
                500,
                "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                "does not support.",
            ),
            Answer.FAILED,
            None,
        ),
        (api_error(503, "unavailable"), Answer.THROTTLED, None),
        (
            api_error(
                403,
                "pods is forbidden: unable to create new content in namespace x because it is "
                "being terminated",
            ),
            Answer.THROTTLED,
            None,
        ),
        (api_error(403, "forbidden: User cannot create pods/eviction"), Answer.FAILED, None),
    ],
)
def test_eviction_answers(exc, answer, budget):
    result = _answer(exc)
    assert result.answer == answer
    assert result.budget == budget


def test_rate_limit_429_keeps_retry_after():
    result = _answer(api_error(429, "Too many requests", headers={"Retry-After": "3"}))
    assert result.retry_after == 3.0


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ApiException(status=503), True),
        (ApiException(status=500), True),
        (ApiException(status=429), True),
        (ApiException(status=404), False),
        (ApiException(status=400), False),
        (ApiException(status=409), False),
        (urllib3.exceptions.ProtocolError("Connection reset by peer"), True),
        (ConnectionResetError(), True),
        (ValueError("bad selector"), False),
    ],
)
def test_only_transient_failures_are_retried(exc, transient):
    assert is_transient(exc) is transient


def test_retrying_backs_off_then_succeeds_and_never_retries_user_errors():
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ApiException(status=503)
        return "ok"

    assert retrying(flaky, "read node", sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2 and all(0 <= s <= 10 for s in sleeps)

    def unknown():
        calls.append(1)
        raise ApiException(status=404)

    calls.clear()
    with pytest.raises(ApiException):
        retrying(unknown, "read node", sleep=sleeps.append)
    assert len(calls) == 1


def test_conflicts_are_retried_only_when_the_write_rereads():
    assert not is_transient(ApiException(status=409))
    assert is_transient(ApiException(status=409), conflicts=True)


def test_a_refused_eviction_names_the_budget_from_the_answer_itself():
    from tasks.kube.drain import _budget_reason

    result = _answer(PDB_429)
    assert _budget_reason("payments", result.budget, result.message) == (
        "PodDisruptionBudget payments/api-pdb (needs 2 healthy pods and has 2 currently)"
    )
