"""Test-wide setup: a private state dir, and the real local control plane for cluster tests.

Set RUNBOOK_TEST_KUBECONFIG to run cluster tests against an already running local cluster
(`runbook cluster up --name dev`), which saves the start-up while iterating.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

_STATE_DIR: str | None = None
# What the tests' maintenance actions run; tests of refusals point RUNBOOK_CONFIG elsewhere.
TEST_OPERATOR_CONFIG = """
allow:
  commands: [[{python}], [sleep], ["true"], [echo]]
  images: [busybox:1.36]
"""


def pytest_configure(config: pytest.Config) -> None:
    """No test writes to the user's real state dir (audit DB, clusters)."""
    global _STATE_DIR
    if "RUNBOOK_STATE_DIR" not in os.environ:
        _STATE_DIR = tempfile.mkdtemp(prefix="kube-runbooks-test-")
        os.environ["RUNBOOK_STATE_DIR"] = _STATE_DIR
    if "RUNBOOK_CONFIG" not in os.environ:  # the operator allows what the tests' actions run
        allowed = Path(os.environ["RUNBOOK_STATE_DIR"]) / "test-operator-config.yaml"
        allowed.parent.mkdir(parents=True, exist_ok=True)
        allowed.write_text(TEST_OPERATOR_CONFIG.format(python=sys.executable))
        os.environ["RUNBOOK_CONFIG"] = str(allowed)
    # Prefect's test server would otherwise try to phone home (no internet here) and log a
    # harmless but alarming "database is locked" traceback from its telemetry service.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _STATE_DIR:
        shutil.rmtree(_STATE_DIR, ignore_errors=True)


@dataclass
class LocalCluster:
    """A running local control plane, as the cluster tests see it."""

    kubeconfig: Path
    api: client.ApiClient
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def policy(self) -> client.PolicyV1Api:
        return client.PolicyV1Api(self.api)


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """A fresh local cluster for the session (etcd, apiserver, KCM, scheduler, KWOK)."""
    existing = os.environ.get("RUNBOOK_TEST_KUBECONFIG")
    if existing:
        path = Path(existing)
        yield LocalCluster(
            kubeconfig=path, api=config.new_client_from_config(config_file=str(path))
        )
        return
    from runbooks.cluster import launcher

    name = f"pytest-{os.getpid()}"
    record = launcher.up(name=name, nodes=2, stop_with_caller=True)  # even if pytest is killed
    try:
        yield LocalCluster(
            kubeconfig=record.kubeconfig,
            api=config.new_client_from_config(config_file=str(record.kubeconfig)),
            pids=dict(record.pids),
        )
    finally:
        launcher.down(name)


@dataclass
class NodeGroup:
    """Nodes created for one test, labelled so its workloads and runbooks select only them."""

    names: list[str]
    label: tuple[str, str]

    @property
    def selector(self) -> str:
        return f"{self.label[0]}={self.label[1]}"

    @property
    def node_selector(self) -> dict[str, str]:
        return {self.label[0]: self.label[1]}


@pytest.fixture
def node_group(cluster: LocalCluster) -> Iterator[Callable[[int], NodeGroup]]:
    """Factory: ``node_group(3)`` adds three fresh Ready nodes for this test; removed afterwards."""
    from runbooks.cluster.nodes import add_nodes, wait_nodes_ready

    created: list[str] = []

    def make(count: int) -> NodeGroup:
        group = uuid.uuid4().hex[:6]
        names = [f"t{group}-{i}" for i in range(1, count + 1)]
        label = ("kube-runbooks.test/group", group)
        add_nodes(cluster.kubeconfig, names=names, labels={label[0]: label[1]})
        created.extend(names)
        wait_nodes_ready(cluster.kubeconfig, names)
        return NodeGroup(names=names, label=label)

    yield make
    for name in created:
        try:
            cluster.core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace with its default ServiceAccount; deleted afterwards."""
    from runbooks.cluster.workloads import ensure_namespace

    name = f"t-{uuid.uuid4().hex[:8]}"
    ensure_namespace(cluster.api, name)
    yield name
    try:
        cluster.core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A real Prefect API (the test harness: a temporary server and database) for the session.

    Yields the API URL; flows called in tests report to it, and other processes (the listener,
    a CLI) can be pointed at it with PREFECT_API_URL.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = str(url)
        try:
            yield str(url)
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A private PostgreSQL on 127.0.0.1 for the session (Debian's binaries, see
    tests/postgres/server.py); ``postgres_server.create_database()`` gives a fresh URL.
    Skips only when the server binaries are not installed."""
    from tests.postgres.server import PostgresUnavailable, find_bin_dir, running_postgres

    try:
        find_bin_dir()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with running_postgres() as server:
        yield server
