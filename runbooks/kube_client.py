"""How kube-runbooks names itself to a Kubernetes API server, and the one place a client is made.

Every request carries the User-Agent ``kube-runbooks/<version>`` (the installed distribution's
version), so the API server's audit log and the ``manager`` of the fields we write attribute
the calls to this tool, not to "OpenAPI-Generator".

The runbooks' clients (bounded timeouts, one-line errors, a connection pool per cluster) are
built by tasks/kube/client.py on ``identified``. The local control plane (runbooks/cluster/) sits
below tasks/ in the import direction (cli -> flows -> tasks -> runbooks), so it gets its plain,
identified client here, from ``client_for_kubeconfig``, instead of importing tasks/.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from kubernetes import client, config

DISTRIBUTION = "kube-runbooks"


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


USER_AGENT = f"{DISTRIBUTION}/{_version()}"


def identified(api: client.ApiClient) -> client.ApiClient:
    """``api``, sending ``USER_AGENT`` with every request."""
    api.user_agent = USER_AGENT
    return api


def client_for_kubeconfig(
    kubeconfig: Path | str | None = None, context: str | None = None
) -> client.ApiClient:
    """A plain client for a kubeconfig (the local control plane's tools and benchmarks)."""
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(kubeconfig) if kubeconfig else None,
        context=context,
        client_configuration=configuration,
    )
    return identified(client.ApiClient(configuration))
