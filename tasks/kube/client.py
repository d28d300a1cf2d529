"""Kubernetes API clients built from a ``KubeTarget``, the single place that reads kubeconfigs.

Every client connects with a bounded timeout, and a cluster that has never answered is
reported in one line (``KubeUnreachable``) instead of being retried like a dropped connection:
an unreachable API at the start of a run is an environment failure to report at once, not a
hiccup to wait out. Once the API has answered, a network failure is a ``KubeConnectionLost``
(a ConnectionError, in one line), so the callers' retries (tasks/kube/retry.py) ride out an API
server restart mid-run and a step that fails for good says why in one line.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from runbooks.kube_client import identified
from runbooks.kube_target import KubeTarget
from tasks.kube.config_file import EXPECTED, KubeConfigError, check_kubeconfig

__all__ = ["KubeConfigError", "KubeConnectionLost", "KubeUnreachable", "api_client"]

# TCP connect and TLS handshake limit, one attempt per request: an address that drops packets
# (or a server that accepts and never answers) fails in 5 s instead of the kernel's two minutes
# times urllib3's three immediate retries. Retrying at once rarely helps (an API server
# restarting takes seconds); the callers' retries with backoff (tasks/kube/retry.py) wait it out.
CONNECT_SECONDS = 5.0
# Reading an answer, for requests that set no limit of their own (watches set theirs). The
# API server ends a non-watch request after 60 s (its --request-timeout), so this only
# catches a server that accepted the connection and went silent.
READ_SECONDS = 120.0
_NETWORK = (urllib3.exceptions.HTTPError, OSError)


class KubeUnreachable(RuntimeError):
    """The API server did not answer the first request of this client: an environment failure
    (exit 1), reported in one line; nothing was changed. Deliberately not a ConnectionError,
    so retry loops do not wait it out."""


class KubeConnectionLost(ConnectionError):
    """The API answered this client before and does not now (e.g. an API server restart):
    a transient failure the callers retry with backoff, said in one line."""


class _BoundedApiClient(client.ApiClient):
    """An ApiClient with a default timeout, that reports a never-reached API in one line."""

    def __init__(self, configuration: client.Configuration, where: str) -> None:
        configuration.retries = urllib3.Retry(total=3, connect=0, read=0)
        super().__init__(configuration=configuration)
        identified(self)  # User-Agent kube-runbooks/<version>: the audit log names us
        self.where = where
        self.reached = False

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = (CONNECT_SECONDS, READ_SECONDS)
        try:
            answer = super().request(method, url, *args, **kwargs)
        except ApiException:
            self.reached = True  # an HTTP answer, even an error, means the API is there
            raise
        except _NETWORK as exc:
            if self.reached:  # retryable, and one line in a step's failure if it stays away
                raise KubeConnectionLost(
                    f"lost the connection to the Kubernetes API at {self.configuration.host}: "
                    f"{network_reason(exc)}"
                ) from exc
            raise KubeUnreachable(
                f"cannot reach the Kubernetes API at {self.configuration.host} "
                f"({self.where}): {network_reason(exc)}; nothing was changed"
            ) from None
        self.reached = True
        return answer


def network_reason(exc: BaseException) -> str:
    """The innermost cause in a few words: 'connection refused', 'timed out after 5s', ..."""
    reason: BaseException = exc
    while isinstance(getattr(reason, "reason", None), BaseException):
        reason = reason.reason  # type: ignore[attr-defined]
    text = str(reason)
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too
        text = text.split("Failed to establish a new connection: ", 1)[-1].rstrip("\"')")
    elif isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return f"no answer to the connection within {CONNECT_SECONDS:g}s"
    elif isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return "the connection was accepted but nothing was answered in time"
    if text.startswith("[Errno"):
        text = text.split("] ", 1)[-1]
    return (text.splitlines() or [type(reason).__name__])[0].strip() or type(reason).__name__


# What the client's loader raises for a kubeconfig it cannot use, beyond check_kubeconfig's.
_LOADER_FAILURES = (
    ConfigException,
    OSError,
    yaml.YAMLError,
    TypeError,
    AttributeError,
    KeyError,
    ValueError,
)
_SHAPE_FAILURES = (TypeError, AttributeError, KeyError)


@lru_cache(maxsize=16)
def _api_client(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    path = kubeconfig or os.environ.get("KUBECONFIG")
    where = f"kubeconfig {path or '~/.kube/config'}, context {context or '(current)'}"
    configuration = client.Configuration()
    try:
        if path is None and not os.path.exists(os.path.expanduser("~/.kube/config")):
            return _in_cluster(configuration)
        check_kubeconfig(path or "~/.kube/config")
        config.load_kube_config(
            config_file=path, context=context, client_configuration=configuration
        )
    except KubeConfigError:
        raise
    except _LOADER_FAILURES as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, _SHAPE_FAILURES):  # a mapping, but its parts of the wrong kind
            raise KubeConfigError(
                f"kubeconfig {path or '~/.kube/config'} is not a valid kubeconfig ({cause}); "
                f"{EXPECTED}"
            ) from None
        raise KubeConfigError(
            f"cannot use kubeconfig {path or '~/.kube/config'} "
            f"(context {context or 'current'}): {cause}"
        ) from None
    return _roomy(_BoundedApiClient(configuration, where))


def _in_cluster(configuration: client.Configuration) -> client.ApiClient:
    """The pod's service account, kubectl's last resort; outside a pod, say what to give."""
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        raise KubeConfigError(
            "no kubeconfig: give --kubeconfig or set KUBECONFIG (~/.kube/config does not "
            "exist, and this is not a pod with a service account)"
        ) from None
    return _roomy(_BoundedApiClient(configuration, "in-cluster service account"))


POOL_SIZE = 64  # parallel drains x parallel evictions share one pool per cluster


def _roomy(api: client.ApiClient) -> client.ApiClient:
    """Keep up to POOL_SIZE connections per host (the default, 5 x CPUs, made urllib3 discard
    connections under parallel drains: a TLS handshake per eviction instead of reuse)."""
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = POOL_SIZE
    return api


def api_client(target: KubeTarget | None = None) -> client.ApiClient:
    """A cached ApiClient for ``target``; one connection pool per kubeconfig and context."""
    target = target or KubeTarget()
    return _api_client(str(target.kubeconfig) if target.kubeconfig else None, target.context)


def check_api(target: KubeTarget, contact: bool) -> None:
    """Load the kubeconfig (KubeConfigError) and, with ``contact``, ask the API its version
    (KubeUnreachable): for callers about to start a Prefect run, whose logs would carry these
    failures' tracebacks. One GET /version, so only where that matters."""
    api = api_client(target)
    if contact:
        client.VersionApi(api).get_code(_request_timeout=(CONNECT_SECONDS, 30))


def core(target: KubeTarget | None = None) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(target))


def policy(target: KubeTarget | None = None) -> client.PolicyV1Api:
    return client.PolicyV1Api(api_client(target))


def apps(target: KubeTarget | None = None) -> client.AppsV1Api:
    return client.AppsV1Api(api_client(target))


def coordination(target: KubeTarget | None = None) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api_client(target))


def batch(target: KubeTarget | None = None) -> client.BatchV1Api:
    return client.BatchV1Api(api_client(target))
