"""One maintenance per cluster: a coordination.k8s.io Lease, held for the run and renewed.

A second run fails fast and names the holder, says how long until the Lease expires, and can
wait for it (``--wait-for-lease``). Expiry is judged by this process's clock only: a holder is
gone once this process has seen its record unchanged for the Lease's duration (see
runbooks/maintenance/lease_clock.py), never from the holder's ``renewTime`` compared with our
clock. A holder that names this machine and whose process is gone (``kill -9`` in a terminal)
is taken over at once, audited. Every write carries the resourceVersion it read, so two runs
racing for a free lease cannot both win.

While held, a thread renews the Lease every third of its duration, with backoff on failures,
until the run ends. The Lease is lost when someone else holds it, or when no renewal succeeded
for the safe time (the duration, less a margin): then ``LEASE_LOST`` (tasks/kube/retry.py) is
set and the steps stop changing the cluster before their next change.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.kit.durations import format_duration
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.lease_clock import (
    Sighting,
    expires_in,
    holder_record,
    observe,
    ours_until,
)
from runbooks.maintenance.lease_holder import HolderIdentity, Machine, dead_local_holder
from runbooks.maintenance.params import InvalidRequest, LeaseSettings
from tasks import audit
from tasks.kube import client as kube
from tasks.kube.retry import INTERRUPT, LEASE_LOST, backoff_delay, describe_error, retrying

log = logging.getLogger("kube_runbooks.lease")

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class LeaseHeld(RuntimeError):
    """Another maintenance holds the cluster: nothing was changed."""


class LeaseRefused(InvalidRequest):
    """The API will not keep our Lease at all (no such namespace, an invalid name, not
    allowed): the request was wrong, and nothing was changed."""


class LeaseLost(RuntimeError):
    """Our lease was taken or could not be renewed: stop starting new work."""


def this_machine() -> Machine:
    """Hostname and boot ID (Linux), as holder identities written here name them."""
    try:
        boot: str | None = _BOOT_ID.read_text().strip() or None
    except OSError:
        boot = None
    return Machine(host=socket.gethostname(), boot=boot)


def process_alive(pid: int) -> bool:
    """Whether a process with this PID exists here (one we may not signal exists too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> datetime:
    return datetime.now(UTC)


class MaintenanceLease:
    def __init__(self, target: KubeTarget, settings: LeaseSettings, holder: str) -> None:
        self.target = target
        self.settings = settings
        self.holder = holder
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sighting: Sighting | None = None  # of another holder, while we wait for it
        self._until = 0.0  # monotonic: our hold is safe until then unless renewed

    @property
    def where(self) -> str:
        return f"Lease {self.settings.namespace}/{self.settings.name}"

    @property
    def duration(self) -> float:
        return self.settings.duration.total_seconds()

    @property
    def lost(self) -> str | None:
        """Why the lease is no longer ours, or None while it is."""
        return LEASE_LOST.reason()

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
            lease_duration_seconds=int(self.duration),
            acquire_time=previous.acquire_time if ours and previous else now,
            renew_time=now,
            lease_transitions=transitions if ours else transitions + (1 if previous else 0),
        )

    def acquire(self) -> None:
        """Take the lease (waiting up to ``settings.wait`` for a live holder), or raise
        LeaseHeld naming the holder and when it expires, or LeaseRefused."""
        try:
            self._until = ours_until(self._acquire(), self.duration)
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

    def _acquire(self) -> float:
        """Take the lease; the monotonic time our successful write was sent."""
        began = time.monotonic()
        wait = self.settings.wait.total_seconds()
        conflicts = 0
        while conflicts < 5:
            sent = time.monotonic()
            lease = self._read()
            if lease is None:
                if self._create():
                    return sent
                conflicts += 1  # someone created it first: read who
                continue
            spec = lease.spec or client.V1LeaseSpec()
            holder = spec.holder_identity
            details: dict[str, object] | None = None
            if holder and holder != self.holder:
                why = self._takeover_reason(spec)
                if why is None:
                    self._wait_or_refuse(spec, began, wait)
                    continue
                details = {"previous_holder": holder, "takeover": why}
                log.warning("%s: taking over from %s: %s", self.where, holder, why)
                audit.record("lease.takeover", self.where, target_kind="lease", details=details)
            lease.spec = self._spec(spec)
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
                return sent
            except ApiException as exc:
                if exc.status != 409:
                    raise
                conflicts += 1
        raise LeaseHeld(f"{self.where} keeps changing hands; try again; nothing was changed")

    def _create(self) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=self.settings.name, namespace=self.settings.namespace
            ),
            spec=self._spec(None),
        )
        try:
            with audit.audited("lease.acquire", self.where, target_kind="lease"):
                retrying(
                    lambda: self._api.create_namespaced_lease(self.settings.namespace, body),
                    f"create {self.where}",
                )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _takeover_reason(self, spec: client.V1LeaseSpec) -> str | None:
        """Why another holder's lease may be taken now, or None while it may be live."""
        dead = dead_local_holder(spec.holder_identity, this_machine(), process_alive, os.getpid())
        if dead is not None:
            return f"its process (pid {dead.pid}) is gone from this machine ({dead.host})"
        duration = float(spec.lease_duration_seconds or self.duration)
        record = holder_record(
            spec.holder_identity,
            spec.renew_time,
            spec.acquire_time,
            spec.lease_duration_seconds,
            spec.lease_transitions,
        )
        self._sighting = observe(self._sighting, record, duration, time.monotonic())
        if expires_in(self._sighting, time.monotonic()) > 0:
            return None
        return f"not renewed for {format_duration(duration)} as this process saw it"

    def _wait_or_refuse(self, spec: client.V1LeaseSpec, began: float, wait: float) -> None:
        """Sleep one polling turn while the wait allows, or raise LeaseHeld saying how long
        until the holder expires and how to wait for it."""
        assert self._sighting is not None
        now = time.monotonic()
        left = expires_in(self._sighting, now)
        waited = now - began
        if waited >= wait or INTERRUPT.is_set():
            raise LeaseHeld(self._held_message(spec, left, waited))
        turn = max(0.5, min(self._sighting.duration / 6, 5.0, left, wait - waited))
        log.info(
            "waiting for %s (held by %s): it expires in %s unless renewed; waited %s of %s",
            self.where,
            spec.holder_identity,
            format_duration(round(left, 1)),
            format_duration(round(waited, 1)),
            format_duration(wait),
        )
        if INTERRUPT.wait(turn):
            raise LeaseHeld(self._held_message(spec, left, waited))

    def _held_message(self, spec: client.V1LeaseSpec, left: float, waited: float) -> str:
        holder = spec.holder_identity
        wait = f"waited {format_duration(round(waited))}; " if waited >= 1 else ""
        offer = format_duration(max(1, round(left)) + 5)
        identity = HolderIdentity.parse(holder)
        where = ""
        if identity is not None and identity.runs_on(this_machine()):
            where = f" (its process, pid {identity.pid}, is still running on this machine)"
        return (
            f"another maintenance is running: {self.where} is held by {holder}{where} "
            f"(renewed {_ago(spec.renew_time)} ago by its clock; it expires in "
            f"{format_duration(max(0, round(left)))} by this machine's clock unless renewed); "
            f"{wait}nothing was changed. To wait for it instead: --wait-for-lease {offer}"
        )

    def renew(self) -> None:
        """One renewal: re-read, check it is still ours, write it back (with its version)."""
        timeout = max(1.0, self.duration / 3)
        try:
            lease = self._api.read_namespaced_lease(
                self.settings.name, self.settings.namespace, _request_timeout=timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                raise LeaseLost(f"{self.where} was deleted") from None
            raise
        if not lease.spec or lease.spec.holder_identity != self.holder:
            holder = lease.spec.holder_identity if lease.spec else None
            raise LeaseLost(f"{self.where} is no longer ours (holder now: {holder or 'nobody'})")
        lease.spec = self._spec(lease.spec)
        self._api.replace_namespaced_lease(
            self.settings.name, self.settings.namespace, lease, _request_timeout=timeout
        )

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
        """Renew every third of the duration until the run ends; on failures retry with
        backoff, and give up only when the lease is someone else's or our safe time is out."""
        interval = self.duration / 3
        retry_cap = max(0.5, self.duration / 10)  # retries, as client-go's RetryPeriod
        failures = 0
        while True:
            pause = interval
            if failures:  # backoff with jitter, never a tight loop
                pause = max(0.2, min(retry_cap, backoff_delay(failures, 0.5)))
            pause = min(pause, max(0.0, self._until - time.monotonic()))
            if self._stop.wait(pause):
                return
            if time.monotonic() >= self._until:
                self._lose(
                    f"{self.where} could not be renewed for {format_duration(self.duration)} "
                    f"({failures} attempt(s) failed); another run may take it now"
                )
                return
            sent = time.monotonic()
            try:
                self.renew()
            except LeaseLost as exc:
                self._lose(str(exc))
                return
            except Exception as exc:
                failures += 1
                log.warning("renewing %s failed (%s)", self.where, describe_error(exc))
                continue
            failures = 0
            self._until = ours_until(sent, self.duration)
            LEASE_LOST.renewed(self._until)

    def _lose(self, reason: str) -> None:
        """Stop the steps (they check LEASE_LOST before each change), and say so in the audit
        trail: every change after this record would be one made without the Lease."""
        LEASE_LOST.lose(reason)
        log.error("lease lost: %s; no further change will be made", reason)
        try:
            audit.record("lease.lost", self.where, target_kind="lease", details={"reason": reason})
        except Exception as exc:  # the run halts either way; the report says why
            log.error("could not record the loss of %s: %s", self.where, exc)

    @contextmanager
    def held(self) -> Iterator[MaintenanceLease]:
        self.acquire()
        LEASE_LOST.hold(self._until)
        self._stop.clear()
        self._thread = threading.Thread(
            target=audit.carried(self._renew_loop), name="lease-renewal", daemon=True
        )
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=10)
            LEASE_LOST.clear()
            self.release()


def _expires_in(spec: client.V1LeaseSpec) -> float:
    """By the holder's clock: only for showing status, never for deciding a takeover."""
    if spec.renew_time is None:
        return 0.0
    duration = spec.lease_duration_seconds or 0
    return duration - (_now() - spec.renew_time).total_seconds()


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    return format_duration(max(0.0, round((_now() - when).total_seconds())))


def read_holder(target: KubeTarget, settings: LeaseSettings) -> str | None:
    """Who holds the lease now (None if free or expired by its holder's clock): for status
    and dry runs, never for deciding a takeover."""
    lease = MaintenanceLease(target, settings, holder="")._read()
    if lease is None or lease.spec is None or not lease.spec.holder_identity:
        return None
    return lease.spec.holder_identity if _expires_in(lease.spec) > 0 else None
