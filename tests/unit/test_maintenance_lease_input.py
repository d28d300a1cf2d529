"""Where the Lease lives is the operator's input: a wrong namespace or name is bad input (exit 2,
one line), said before anything changes, never a traceback. Answers as the apiserver sends them."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.rest import ApiException
from typer.testing import CliRunner

from runbooks.cli.main import app
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.params import LeaseSettings
from tasks.kube.lease import MaintenanceLease

LEASE = MaintenanceLease(KubeTarget(), LeaseSettings(namespace="ops", name="maint"), "me")


def answer(status: int, message: str, kind: str, name: str) -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.body = json.dumps(
        {
            "kind": "Status",
            "status": "Failure",
            "message": message,
            "details": {"name": name, "kind": kind},
            "code": status,
        }
    )
    return exc


FORBIDDEN = (
    'leases.coordination.k8s.io "maint" is forbidden: User "system:serviceaccount:kube-runbooks:'
    'runbook" cannot create resource "leases" in API group "coordination.k8s.io" in the '
    'namespace "ops"'
)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            answer(404, 'namespaces "ops" not found', "namespaces", "ops"),
            "cannot take Lease ops/maint: namespace ops does not exist (create it, or name "
            "another with --lease-namespace); nothing was changed",
        ),
        (
            answer(403, FORBIDDEN, "leases", "maint"),
            f"cannot take Lease ops/maint: {FORBIDDEN}; nothing was changed",
        ),
        (
            answer(422, 'Lease.coordination.k8s.io "Maint" is invalid: ...', "leases", "Maint"),
            'cannot take Lease ops/maint: Lease.coordination.k8s.io "Maint" is invalid: ...; '
            "nothing was changed",
        ),
        # not about our Lease, or not the operator's mistake: the failure stays what it is
        (answer(404, 'namespaces "jobs" not found', "namespaces", "jobs"), None),
        (answer(404, 'leases.coordination.k8s.io "maint" not found', "leases", "maint"), None),
        (answer(500, "etcdserver: request timed out", "leases", "maint"), None),
        (ApiException(status=404, reason="Not Found"), None),  # no body to read
    ],
)
def test_only_a_lease_the_api_will_not_keep_is_bad_input(exc, expected):
    assert LEASE.refusal(exc) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--lease-namespace", "Kube_System"],
            "--lease-namespace 'Kube_System' is not a namespace name (lowercase letters, digits "
            "and '-', at most 63)",
        ),
        (["--lease-namespace", "a" * 64], "is not a namespace name"),
        (["--lease-namespace", "ops.team"], "is not a namespace name"),  # a label, no dots
        (
            ["--lease-name", "maint lease"],
            "--lease-name 'maint lease' is not a Lease name (lowercase letters, digits, '-' and "
            "'.', at most 253)",
        ),
        (["--lease-name", "-maint"], "is not a Lease name"),
    ],
)
def test_bad_lease_names_exit_2_in_one_line_before_any_cluster_call(args, message):
    result = CliRunner().invoke(
        app, ["maintain", "worker-1", "--kubeconfig", "/nonexistent", *args]
    )

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("lease", "message"),
    [
        ({"namespace": "Kube_System"}, "'Kube_System' is not a namespace name"),
        ({"name": "maint lease"}, "'maint lease' is not a Lease name"),
    ],
)
def test_the_prefect_form_refuses_bad_lease_names_as_the_cli_does(lease, message):
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools.validation import ValidationError as FormError
    from prefect.utilities.schema_tools.validation import validate
    from pydantic import ValidationError

    from flows.rolling_maintenance import rolling_node_maintenance
    from runbooks.maintenance.params import MaintenanceParams

    values = {"params": {"selector": "pool=a", "lease": lease}}
    schema = parameter_schema(rolling_node_maintenance.fn).model_dump_for_openapi()
    with pytest.raises(FormError, match="lease"):
        validate(values, schema, raise_on_error=True)
    with pytest.raises(ValidationError, match=message):
        MaintenanceParams.model_validate(values["params"])
