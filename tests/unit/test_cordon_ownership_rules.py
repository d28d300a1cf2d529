"""Whose cordon is it, from what the API server records: a table of node states."""

from __future__ import annotations

import pytest
from kubernetes import client

from runbooks.maintenance.facts import NodeInfo
from runbooks.maintenance.ownership import (
    FIELD_MANAGER,
    Cordon,
    cordon_owner,
    foreign_cordon,
    release_action,
)
from tasks.kube.convert import node_info

RUN = "local-aaaaaaaaaaaa"
EARLIER = "local-bbbbbbbbbbbb"


@pytest.mark.parametrize(
    ("unschedulable", "mark", "set_by", "owner", "release"),
    [
        (False, None, [], Cordon.NONE, "nothing"),
        (False, EARLIER, [], Cordon.NONE, "clear-mark"),  # lifted by `kubectl uncordon`
        (True, RUN, [FIELD_MANAGER], Cordon.THIS_RUN, "uncordon"),
        (True, EARLIER, [FIELD_MANAGER], Cordon.EARLIER_RUN, "uncordon"),
        (True, None, ["kubectl-cordon"], Cordon.SOMEONE_ELSE, "foreign"),
        # our mark left behind, then a person cordoned again: not ours
        (True, EARLIER, ["kubectl-cordon"], Cordon.SOMEONE_ELSE, "foreign"),
        (True, RUN, ["kubectl-patch"], Cordon.SOMEONE_ELSE, "foreign"),
        # a server-side apply that also declares it: someone else wants it cordoned too
        (True, EARLIER, [FIELD_MANAGER, "ops-apply"], Cordon.SOMEONE_ELSE, "foreign"),
        # no ownership recorded at all: fail closed, never lift it
        (True, EARLIER, [], Cordon.SOMEONE_ELSE, "foreign"),
    ],
)
def test_a_cordon_is_ours_only_while_our_field_manager_set_it(
    unschedulable, mark, set_by, owner, release
):
    node = NodeInfo(
        name="n", unschedulable=unschedulable, cordoned_by=mark, unschedulable_set_by=set_by
    )
    assert cordon_owner(node, RUN) == owner
    assert release_action(node) == release


def test_a_foreign_cordon_names_who_set_it_and_says_when_our_mark_is_stale():
    stale = NodeInfo(
        name="n", unschedulable=True, cordoned_by=EARLIER, unschedulable_set_by=["kubectl-cordon"]
    )
    assert "cordoned by someone else (kubectl-cordon)" in foreign_cordon(stale)
    assert f"run {EARLIER}" in foreign_cordon(stale) and "stale" in foreign_cordon(stale)


def _entry(
    manager: str, fields: dict, subresource: str | None = None
) -> client.V1ManagedFieldsEntry:
    return client.V1ManagedFieldsEntry(
        manager=manager, operation="Update", fields_v1=fields, subresource=subresource
    )


def test_ownership_of_spec_unschedulable_is_read_from_managed_fields():
    node = client.V1Node(
        metadata=client.V1ObjectMeta(
            name="n",
            managed_fields=[
                _entry("kwok", {"f:status": {"f:conditions": {}}}, subresource="status"),
                _entry("kube-controller-manager", {"f:spec": {"f:taints": {}}}),
                _entry("kubectl-cordon", {"f:spec": {"f:unschedulable": {}}}),
            ],
        ),
        spec=client.V1NodeSpec(unschedulable=True),
    )
    assert node_info(node).unschedulable_set_by == ["kubectl-cordon"]
