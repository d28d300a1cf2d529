"""The flow as the Prefect UI and the deployments work see it."""

from __future__ import annotations

from flows.rolling_maintenance import rolling_node_maintenance


def test_flow_is_named_and_takes_one_model_so_the_ui_renders_a_form():
    assert rolling_node_maintenance.name == "rolling-node-maintenance"
    schema = rolling_node_maintenance.parameters.model_dump()
    assert list(schema["properties"]) == ["params"]
    model = schema["definitions"]["MaintenanceParams"]["properties"]
    for field in (
        "nodes",
        "selector",
        "max_unavailable",
        "drain_timeout",
        "ready_timeout",
        "grace_period",
        "delete_emptydir_data",
        "force",
        "ignore_daemonsets",
        "action",
        "blockers",
        "dry_run",
        "deadline",
        "on_drain_failure",
    ):
        assert field in model, field
        assert "description" in model[field] or "$ref" in model[field] or "allOf" in model[field]
