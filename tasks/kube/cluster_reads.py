"""Reading a cluster for provision verification: one request per resource type, all at once.

Each resource type is one LIST for the whole run (never a GET per node or namespace), answered
as raw JSON (the client's model classes cost seconds on thousands of objects and the checks read
the API's own field names). The reads run concurrently through the step runner, so under
Prefect each is a task run. A read that fails is kept as the reason in the snapshot; only the
checks that needed it report ``error``. A cluster that never answers, or a kubeconfig that
cannot be used, ends the run with one line instead.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from kubernetes import client
from kubernetes.client.rest import ApiException
from prefect import task
from prefect.cache_policies import NO_CACHE

from runbooks.kube_target import KubeTarget
from runbooks.verify.baseline import Certificates
from runbooks.verify.checks import webhook_services
from runbooks.verify.snapshot import CertSeen, ClusterSnapshot, Probe
from tasks.kube.client import KubeConfigError, KubeUnreachable, api_client
from tasks.kube.retry import describe_error, retrying
from tasks.steps import StepRunner

TLS_SECONDS = 5.0


def _json(response: Any) -> Any:
    return json.loads(response.data)


def _items(response: Any) -> list[dict[str, Any]]:
    return list(_json(response).get("items") or [])


def probe(api: client.ApiClient, path: str) -> Probe:
    """``/livez`` or ``/readyz``: the status code; on failure, the failing lines of ``?verbose``."""
    try:
        api.call_api(path, "GET", auth_settings=["BearerToken"], _preload_content=False)
        return Probe(status=200)
    except ApiException as exc:
        status = exc.status or 0
    try:
        api.call_api(
            path,
            "GET",
            query_params=[("verbose", "true")],
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        return Probe(status=status, failed=["passed on the second look (?verbose)"])
    except ApiException as exc:
        text = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or "")
    failed = [line.strip() for line in text.splitlines() if line.startswith("[-]")]
    return Probe(status=status, failed=failed or [text.strip()[:200]])


def _list(method: str, api_class: Callable[[client.ApiClient], Any]) -> Callable[..., Any]:
    return lambda api: _items(getattr(api_class(api), method)(_preload_content=False))


# name -> how to read it with one request
READERS: dict[str, Callable[[client.ApiClient], Any]] = {
    "livez": lambda api: probe(api, "/livez"),
    "readyz": lambda api: probe(api, "/readyz"),
    "version": lambda api: _json(client.VersionApi(api).get_code(_preload_content=False)),
    "nodes": _list("list_node", client.CoreV1Api),
    "namespaces": _list("list_namespace", client.CoreV1Api),
    "resourcequotas": _list("list_resource_quota_for_all_namespaces", client.CoreV1Api),
    "limitranges": _list("list_limit_range_for_all_namespaces", client.CoreV1Api),
    "apiservices": _list("list_api_service", client.ApiregistrationV1Api),
    "validatingwebhooks": _list(
        "list_validating_webhook_configuration", client.AdmissionregistrationV1Api
    ),
    "mutatingwebhooks": _list(
        "list_mutating_webhook_configuration", client.AdmissionregistrationV1Api
    ),
    "storageclasses": _list("list_storage_class", client.StorageV1Api),
    "deployments": _list("list_deployment_for_all_namespaces", client.AppsV1Api),
    "daemonsets": _list("list_daemon_set_for_all_namespaces", client.AppsV1Api),
    "statefulsets": _list("list_stateful_set_for_all_namespaces", client.AppsV1Api),
    "clusterrolebindings": _list("list_cluster_role_binding", client.RbacAuthorizationV1Api),
}
# Read after the webhooks, for their Services only (one LIST, by label).
DEPENDENT = {"endpointslices", "certificates"}


@task(task_run_name="read {what}", cache_policy=NO_CACHE)
def read(what: str, target: KubeTarget) -> Any:
    """One resource type, one request (retried on a transient failure)."""
    api = api_client(target)
    return retrying(lambda: READERS[what](api), f"read {what}", attempts=3)


@task(task_run_name="read endpointslices", cache_policy=NO_CACHE)
def read_endpoint_slices(target: KubeTarget, services: list[str]) -> list[dict[str, Any]]:
    """The EndpointSlices of these Services (namespace/name), in one LIST by label."""
    if not services:
        return []
    names = sorted({s.split("/", 1)[1] for s in services})
    selector = f"kubernetes.io/service-name in ({','.join(names)})"
    api = client.DiscoveryV1Api(api_client(target))
    return retrying(
        lambda: _items(
            api.list_endpoint_slice_for_all_namespaces(
                label_selector=selector, _preload_content=False
            )
        ),
        "read endpointslices",
        attempts=3,
    )


@task(task_run_name="read certificates", cache_policy=NO_CACHE)
def read_certificates(target: KubeTarget, declared: Certificates) -> list[CertSeen]:
    """The API server's serving certificate (a TLS handshake), named PEM files and Secrets."""
    api = api_client(target)
    seen: list[CertSeen] = []
    if declared.apiserver:
        seen.append(serving_certificate(api.configuration.host))
    for path in declared.files:
        seen.append(_from_pem(f"file {path}", partial(Path(path).read_bytes)))
    core = client.CoreV1Api(api)
    for ref in declared.secrets:
        source = f"secret {ref.namespace}/{ref.name}"
        seen.append(_from_pem(source, partial(_secret_cert, core, ref.namespace, ref.name)))
    return seen


def _secret_cert(core: client.CoreV1Api, namespace: str, name: str) -> bytes:
    secret = _json(core.read_namespaced_secret(name, namespace, _preload_content=False))
    data = (secret.get("data") or {}).get("tls.crt")
    if not data:
        raise ValueError("no tls.crt in the Secret")
    return base64.b64decode(data)


def _from_pem(source: str, load: Callable[[], bytes]) -> CertSeen:
    try:
        cert = x509.load_pem_x509_certificate(load())
    except ApiException as exc:
        reason = "not found" if exc.status == 404 else describe_error(exc)
        return CertSeen(source=source, problem=reason)
    except FileNotFoundError:
        return CertSeen(source=source, problem="file not found")
    except (OSError, ValueError) as exc:
        return CertSeen(source=source, problem=f"not a readable PEM certificate ({exc})")
    return CertSeen(
        source=source, subject=cert.subject.rfc4514_string(), not_after=cert.not_valid_after_utc
    )


def serving_certificate(server: str) -> CertSeen:
    """The certificate the API server presents (read, not trusted: an expired one is the point)."""
    url = urlparse(server)
    host, port = url.hostname or "127.0.0.1", url.port or 443
    source = f"API server {host}:{port}"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=TLS_SECONDS) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        return CertSeen(source=source, problem=f"TLS handshake failed: {exc}")
    if not der:
        return CertSeen(source=source, problem="no certificate presented")
    cert = x509.load_der_x509_certificate(der)
    return CertSeen(
        source=source, subject=cert.subject.rfc4514_string(), not_after=cert.not_valid_after_utc
    )


def read_cluster(
    runner: StepRunner, target: KubeTarget, needed: set[str], certificates: Certificates | None
) -> ClusterSnapshot:
    """Everything the chosen checks need, each resource type read once, concurrently."""
    api_client(target)  # an unusable kubeconfig is bad input: raised here, before any read
    wanted = set(needed)
    if "endpointslices" in wanted:
        wanted |= {"validatingwebhooks", "mutatingwebhooks"}
    calls: dict[str, Any] = {
        name: (read, {"what": name, "target": target}) for name in sorted(wanted - DEPENDENT)
    }
    if "certificates" in wanted:
        calls["certificates"] = (
            read_certificates,
            {"target": target, "declared": certificates or Certificates(apiserver=False)},
        )
    snapshot = _collect(ClusterSnapshot(), runner.run_all(calls))
    if "endpointslices" in wanted:
        try:
            services = [service for _, _, service, _ in webhook_services(snapshot)]
            raw = runner.run_all(
                {"endpointslices": (read_endpoint_slices, {"target": target, "services": services})}
            )
        except Exception as exc:  # the webhooks could not be read: the check says so
            raw = {"endpointslices": exc}
        _collect(snapshot, raw)
    return snapshot


def _collect(snapshot: ClusterSnapshot, raw: dict[str, Any]) -> ClusterSnapshot:
    for name, value in raw.items():
        if isinstance(value, KubeUnreachable | KubeConfigError):
            raise value  # the environment, not a check: one line for the whole run
        if isinstance(value, BaseException):
            snapshot.failures[name] = describe_error(value)
        else:
            snapshot.reads[name] = value
    return snapshot
