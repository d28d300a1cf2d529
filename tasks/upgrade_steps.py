"""The upgrade's steps as Prefect tasks (the UI shows each; LocalRunner calls ``.fn``).

Each takes the run's parameters, not a provider object, so a step is a plain, serialisable
call; the provider is chosen again inside from the same parameters.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from runbooks.upgrade.params import UpgradeParams
from tasks.upgrade_providers import StepOutput, provider_for
from tasks.upgrade_state import NodeVersion, api_server_version, node_versions


@task(task_run_name="read the API server version", cache_policy=NO_CACHE)
def read_api_server_version(params: UpgradeParams) -> str:
    return api_server_version(params.target)


@task(task_run_name="read node versions", cache_policy=NO_CACHE)
def read_node_versions(params: UpgradeParams) -> list[NodeVersion]:
    return node_versions(params.target, params.selector)


@task(task_run_name="etcd snapshot", cache_policy=NO_CACHE)
def take_snapshot(params: UpgradeParams, run_id: str) -> StepOutput | None:
    return provider_for(params).snapshot(run_id)


@task(task_run_name="upgrade the control plane to {version}", cache_policy=NO_CACHE)
def upgrade_control_plane(params: UpgradeParams, version: str) -> StepOutput:
    return provider_for(params).upgrade_control_plane(version)
