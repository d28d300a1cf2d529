"""Kubernetes API clients built from a ``KubeTarget``, the single place that reads kubeconfigs."""

from __future__ import annotations

import os
from functools import lru_cache

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from runbooks.kube_target import KubeTarget


class KubeConfigError(ValueError):
    """The kubeconfig or context cannot be used; a user error (nothing was touched)."""


@lru_cache(maxsize=16)
def _api_client(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    path = kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if path is None and not os.path.exists(os.path.expanduser("~/.kube/config")):
            config.load_incluster_config()
            return client.ApiClient()
        return _roomy(config.new_client_from_config(config_file=path, context=context))
    except (ConfigException, FileNotFoundError, OSError) as exc:
        raise KubeConfigError(
            f"cannot use kubeconfig {path or '~/.kube/config'} "
            f"(context {context or 'current'}): {exc}"
        ) from None


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
