"""The table of removed APIs, the scan of stored objects, and the deprecated-API metric."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runbooks.upgrade.removals import (
    REMOVALS,
    Removal,
    parse_deprecated_requests,
    removed_between,
    removed_by,
    scan,
)


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        ((1, 24), (1, 25), {"batch/v1beta1 CronJob", "policy/v1beta1 PodDisruptionBudget"}),
        ((1, 28), (1, 29), {"flowcontrol.apiserver.k8s.io/v1beta2 FlowSchema"}),
        ((1, 31), (1, 32), {"flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema"}),
        ((1, 26), (1, 27), {"storage.k8s.io/v1beta1 CSIStorageCapacity"}),
        ((1, 21), (1, 22), {"networking.k8s.io/v1beta1 Ingress", "extensions/v1beta1 Ingress"}),
    ],
)
def test_each_release_lists_what_the_deprecation_guide_removes(
    current: tuple[int, int], target: tuple[int, int], expected: set[str]
) -> None:
    found = {f"{r.group_version} {r.kind}" for r in removed_between(current, target)}
    assert expected <= found
    assert all(current < r.removed_in <= target for r in removed_between(current, target))


def test_nothing_known_is_removed_between_1_35_and_1_36() -> None:
    assert removed_between((1, 35), (1, 36)) == []
    assert len(removed_by((1, 36))) == len(REMOVALS)


def _obj(name: str, managers: list[tuple[str, str]], applied: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "managedFields": [{"manager": m, "apiVersion": v} for m, v in managers],
    }
    if applied:
        meta["annotations"] = {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"apiVersion": applied})
        }
    return {"metadata": meta}


CRONJOB = Removal(
    group="batch", version="v1beta1", kind="CronJob", resource="cronjobs", removed_in=(1, 25)
)


def test_only_objects_written_through_the_removed_version_count() -> None:
    items = [
        _obj("old", [("helm", "batch/v1beta1")]),
        _obj("new", [("kube-controller-manager", "batch/v1")]),  # listed, but written via v1
        _obj("applied", [("kubectl", "batch/v1")], applied="batch/v1beta1"),
    ]
    found = scan(CRONJOB, items)
    assert found.listed == 3
    assert found.objects == [
        "shop/applied (by kubectl apply (last-applied-configuration))",
        "shop/old (by helm)",
    ]


METRICS = """\
# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested
# TYPE apiserver_requested_deprecated_apis gauge
apiserver_requested_deprecated_apis{group="batch",removed_release="1.25",resource="cronjobs",subresource="",version="v1beta1"} 1
apiserver_requested_deprecated_apis{group="",removed_release="",resource="endpoints",subresource="",version="v1"} 1
apiserver_requested_deprecated_apis{group="x.io",removed_release="1.40",resource="things",subresource="status",version="v1"} 0
apiserver_request_total{code="200"} 12
"""  # noqa: E501


def test_the_metric_names_each_requested_deprecated_api_and_its_removal() -> None:
    found = parse_deprecated_requests(METRICS)
    assert [(d.describe(), d.removed_in) for d in found] == [
        ("v1 endpoints (deprecated)", None),
        ("batch/v1beta1 cronjobs (removed in v1.25)", (1, 25)),
    ]
