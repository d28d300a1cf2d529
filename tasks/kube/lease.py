"""One maintenance per cluster: a coordination.k8s.io Lease, held for the run and renewed.

A second run fails fast and names the holder. A holder that stopped renewing (its process was
killed) is taken over once ``renewTime + leaseDurationSeconds`` has passed. Every write carries
the resourceVersion it read, so two runs racing for a free lease cannot both win.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.durations import format_duration
from runbooks.maintenance.params import InvalidRequest, LeaseSettings
from tasks import audit
from tasks.kube import client as kube
from tasks.kube.retry import retrying

log = logging.getLogger("kube_runbooks.lease")


class LeaseHeld(RuntimeError):
    """Another maintenance holds the cluster: nothing was changed."""


class LeaseRefused(InvalidRequest):
    """The API will not keep our Lease at all (no such namespace, an invalid name, not
    allowed): the request was wrong, and nothing was changed."""


class LeaseLost(RuntimeError):
    """Our lease was taken or could not be renewed: stop starting new work."""


def _now() -> datetime:
    return datetime.now(UTC)


class MaintenanceLease:
    def __init__(self, target: KubeTarget, settings: LeaseSettings, holder: str) -> None:
        self.target = target
        self.settings = settings
        self.holder = holder
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"Lease {self.settings.namespace}/{self.settings.name}"

    @property
    def _api(self) -> client.CoordinationV1Api:
        return kube.coordination(self.target)

    def _read(self) -> client.V1Lease | None:
        try:
            return retrying(
                lambda: self._api.read_namespaced_lease(
                    self.settings.name, self.settings.namespace
                ),
                f"read {self.where}",
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _spec(self, previous: client.V1LeaseSpec | None) -> client.V1LeaseSpec:
        now = _now()
        ours = previous is not None and previous.holder_identity == self.holder
        transitions = (previous.lease_transitions or 0) if previous else 0
        return client.V1LeaseSpec(
            holder_identity=self.holder,
            lease_duration_seconds=int(self.settings.duration.total_seconds()),
            acquire_time=previous.acquire_time if ours and previous else now,
            renew_time=now,
            lease_transitions=transitions if ours else transitions + (1 if previous else 0),
        )

    def acquire(self) -> None:
        """Take the lease, or raise LeaseHeld naming the live holder, or LeaseRefused."""
        try:
            self._acquire()
        except ApiException as exc:
            reason = self.refusal(exc)
            if reason is None:
                raise
            raise LeaseRefused(reason) from None

    def refusal(self, exc: ApiException) -> str | None:
        """Why the API will not keep our Lease, from its answer; None for any other failure
        (a server error, or a namespace that is not ours, stays what it is)."""
        try:
            answer = json.loads(exc.body or "{}")
        except ValueError:
            return None
        details = answer.get("details") or {}
        namespace = self.settings.namespace
        if exc.status == 404 and details.get("kind") == "namespaces":
            if details.get("name") != namespace:
                return None
            return (
                f"cannot take {self.where}: namespace {namespace} does not exist (create it, or "
                "name another with --lease-namespace); nothing was changed"
            )
        if exc.status in (403, 422) and details.get("kind") == "leases":
            message = answer.get("message") or exc.reason
            return f"cannot take {self.where}: {message}; nothing was changed"
        return None

    def _acquire(self) -> None:
        for _ in range(5):
            lease = self._read()
            if lease is None:
                body = client.V1Lease(
                    metadata=client.V1ObjectMeta(
                        name=self.settings.name, namespace=self.settings.namespace
                    ),
                    spec=self._spec(None),
                )
                try:
                    with audit.audited("lease.acquire", self.where, target_kind="lease"):
                        retrying(
                            lambda body=body: self._api.create_namespaced_lease(  # type: ignore[misc]
                                self.settings.namespace, body
                            ),
                            f"create {self.where}",
                        )
                    return
                except ApiException as exc:
                    if exc.status == 409:
                        continue  # someone created it first: read who
                    raise
            spec = lease.spec or client.V1LeaseSpec()
            holder = spec.holder_identity
            if holder and holder != self.holder:
                left = _expires_in(spec)
                if left > 0:
                    renewed = _ago(spec.renew_time)
                    raise LeaseHeld(
                        f"another maintenance is running: {self.where} is held by {holder} "
                        f"(renewed {renewed} ago, expires in {format_duration(left)} unless "
                        "renewed); nothing was changed"
                    )
                log.warning(
                    "%s: holder %s stopped renewing %s ago; taking over",
                    self.where,
                    holder,
                    _ago(spec.renew_time),
                )
            lease.spec = self._spec(spec)
            details = {"previous_holder": holder} if holder and holder != self.holder else None
            try:
                with audit.audited(
                    "lease.acquire", self.where, target_kind="lease", details=details
                ):
                    retrying(
                        lambda lease=lease: self._api.replace_namespaced_lease(  # type: ignore[misc]
                            self.settings.name, self.settings.namespace, lease
                        ),
                        f"take {self.where}",
                    )
                return
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise
        raise LeaseHeld(f"{self.where} keeps changing hands; try again")

    def renew(self) -> None:
        lease = self._read()
        if lease is None or (lease.spec and lease.spec.holder_identity != self.holder):
            holder = lease.spec.holder_identity if lease and lease.spec else None
            raise LeaseLost(f"{self.where} is no longer ours (holder now: {holder or 'nobody'})")
        lease.spec = self._spec(lease.spec)
        self._api.replace_namespaced_lease(self.settings.name, self.settings.namespace, lease)

    def release(self) -> None:
        """Give the lease up if it is still ours (someone who took it over keeps it)."""
        try:
            lease = self._read()
            if lease is None or not lease.spec or lease.spec.holder_identity != self.holder:
                return
            lease.spec.holder_identity = None
            lease.spec.renew_time = None
            lease.spec.acquire_time = None
            with audit.audited("lease.release", self.where, target_kind="lease"):
                retrying(
                    lambda: self._api.replace_namespaced_lease(
                        self.settings.name, self.settings.namespace, lease
                    ),
                    f"release {self.where}",
                    conflicts=False,
                )
        except Exception as exc:  # best effort: it expires anyway
            log.warning("could not release %s (%s); it expires on its own", self.where, exc)

    def _renew_loop(self) -> None:
        interval = self.settings.duration.total_seconds() / 3
        failures = 0
        while not self._stop.wait(interval):
            try:
                self.renew()
                failures = 0
            except LeaseLost as exc:
                log.error("%s", exc)
                self.lost.set()
                return
            except Exception as exc:
                failures += 1
                log.warning("renewing %s failed (%s)", self.where, exc)
                if failures >= 2:  # two missed renewals: expiry is near, act as if lost
                    self.lost.set()
                    return

    @contextmanager
    def held(self) -> Iterator[MaintenanceLease]:
        self.acquire()
        self._thread = threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=10)
            self.release()


def _expires_in(spec: client.V1LeaseSpec) -> float:
    if spec.renew_time is None:
        return 0.0
    duration = spec.lease_duration_seconds or 0
    return duration - (_now() - spec.renew_time).total_seconds()


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    return format_duration(max(0.0, (_now() - when).total_seconds()))


def read_holder(target: KubeTarget, settings: LeaseSettings) -> str | None:
    """Who holds the lease now (None if free or expired): for status and dry runs."""
    lease = MaintenanceLease(target, settings, holder="")._read()
    if lease is None or lease.spec is None or not lease.spec.holder_identity:
        return None
    return lease.spec.holder_identity if _expires_in(lease.spec) > 0 else None
