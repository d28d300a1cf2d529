"""Parameters as operators write them; bad ones are refused with the reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from runbooks.kit.durations import format_duration, parse_duration
from runbooks.maintenance.max_unavailable import resolve_max_unavailable, validate_max_unavailable
from runbooks.maintenance.params import MaintenanceAction, MaintenanceParams


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("1h30m", 5400),
        ("90s", 90),
        ("90", 90),
        ("2d", 172800),
        ("500ms", 0.5),
        ("1.5h", 5400),
        (30, 30),
    ],
)
def test_durations_read_like_kubectl_flags(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15 minutes", "m", "-5m", "1x"])
def test_unreadable_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (2.5, "2.5s"), (900, "15m"), (5400, "1h30m"), (3661, "1h1m1s")]
)
def test_durations_print_short(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "pool", "limit"),
    [
        ("1", 10, 1),
        ("3", 10, 3),
        ("25%", 10, 2),
        ("25%", 2, 1),
        ("100%", 7, 7),
        ("10%", 50, 5),
        (2, 5, 2),
    ],
)
def test_max_unavailable_resolves_to_a_node_count(value, pool, limit):
    assert resolve_max_unavailable(validate_max_unavailable(value), pool) == limit


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("0", "at least 1"), ("0%", "at least 1"), ("150%", "more than 100%"), ("two", "neither")],
)
def test_bad_max_unavailable_is_refused_with_a_reason(value, fragment):
    with pytest.raises(ValidationError) as err:
        MaintenanceParams(nodes=["n1"], max_unavailable=value)
    assert fragment in str(err.value)


def test_params_need_nodes_or_a_selector():
    with pytest.raises(ValidationError, match="name the nodes"):
        MaintenanceParams()


def test_params_take_durations_as_text_and_default_like_the_issue():
    p = MaintenanceParams.model_validate(
        {"selector": "pool=a", "drain_timeout": "20m", "ready_timeout": "PT5M"}
    )
    assert p.drain_timeout == timedelta(minutes=20)
    assert p.ready_timeout == timedelta(minutes=5)
    assert p.grace_period is None
    assert (p.delete_emptydir_data, p.force, p.ignore_daemonsets) == (False, False, True)
    assert p.on_drain_failure == "uncordon"
    assert MaintenanceParams(nodes=["a"]).drain_timeout == timedelta(minutes=15)


def test_params_round_trip_through_json_as_prefect_sends_them():
    p = MaintenanceParams.model_validate(
        {"selector": "pool=a", "max_unavailable": "25%", "drain_timeout": "90s"}
    )
    again = MaintenanceParams.model_validate_json(p.model_dump_json())
    assert again == p


def test_command_action_splits_like_a_shell_and_substitutes_the_node():
    action = MaintenanceAction(kind="command", command="ssh {node} 'sudo apt-get -y upgrade'")
    assert action.argv("worker-3") == ["ssh", "worker-3", "sudo apt-get -y upgrade"]


@pytest.mark.parametrize(
    ("action", "fragment"),
    [
        ({"kind": "command"}, "needs a command"),
        ({"kind": "command", "command": "echo 'x"}, "cannot split"),
        ({"kind": "reboot"}, "none"),
    ],
)
def test_bad_actions_are_refused(action, fragment):
    with pytest.raises(ValidationError) as err:
        MaintenanceParams(nodes=["a"], action=action)
    assert fragment in str(err.value)


def test_bad_alert_filter_is_refused():
    with pytest.raises(ValidationError, match="cannot read alert matcher"):
        MaintenanceParams.model_validate(
            {"nodes": ["a"], "blockers": {"alert_filter": "severity critical"}}
        )


def test_the_form_schema_has_descriptions_and_choices():
    schema = MaintenanceParams.model_json_schema()
    props = schema["properties"]
    assert props["max_unavailable"]["description"]
    assert props["on_drain_failure"]["enum"] == ["uncordon", "leave-cordoned"]
    action = schema["$defs"]["MaintenanceAction"]["properties"]["kind"]
    assert action["enum"] == ["none", "command", "job", "manual", "kubelet-version"]


def _flow_schema() -> dict:
    from prefect.utilities.callables import parameter_schema

    from flows.rolling_maintenance import rolling_node_maintenance

    return parameter_schema(rolling_node_maintenance.fn).model_dump_for_openapi()


def test_the_prefect_form_shows_durations_as_operators_type_them():
    models = _flow_schema()["definitions"]
    assert models["MaintenanceParams"]["properties"]["drain_timeout"]["default"] == "15m"
    assert models["LeaseSettings"]["properties"]["duration"]["default"] == "1m"
    assert models["RunApproval"]["properties"]["timeout"].get("default") is None  # the operator's
    dumped = MaintenanceParams.model_validate(
        {"selector": "pool=a", "ready_timeout": "PT1H30M"}
    ).model_dump(mode="json")
    assert (dumped["drain_timeout"], dumped["ready_timeout"]) == ("15m", "1h30m")
    assert dumped["action"]["timeout"] == "30m"


@pytest.mark.parametrize("typed", ["20m", "1h30m", "90", "2.5s", "PT20M"])
def test_the_prefect_form_accepts_what_the_runbook_reads(typed):
    from prefect.utilities.schema_tools.validation import validate

    values = {"params": {"selector": "pool=a", "drain_timeout": typed}}
    validate(values, _flow_schema(), raise_on_error=True)
    assert MaintenanceParams.model_validate(values["params"]).drain_timeout.total_seconds() > 0


@pytest.mark.parametrize("typed", ["20 minutes", "m", "-5m"])
def test_the_prefect_form_refuses_a_duration_the_runbook_cannot_read(typed):
    from prefect.utilities.schema_tools.validation import ValidationError as FormError
    from prefect.utilities.schema_tools.validation import validate

    values = {"params": {"selector": "pool=a", "drain_timeout": typed}}
    with pytest.raises(FormError, match="drain_timeout"):
        validate(values, _flow_schema(), raise_on_error=True)
    with pytest.raises(ValidationError):
        MaintenanceParams.model_validate(values["params"])
