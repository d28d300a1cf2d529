"""`runbook backup-check` against the real local control plane.

Velero does not run here: its CustomResourceDefinitions (runbooks/backups/crds/velero.yaml) are
installed and the tests write Backups, Schedules, storage locations and Restores with the status
Velero's controllers would write. CronJobs are real: the controller-manager starts their Jobs and
KWOK ends the pods with the exit code their annotation asks for. etcd snapshots are real, taken
from the cluster's own etcd and read and restored with etcdutl built beside it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from flows.backup_check import run_local
from runbooks.backups.params import BackupCheckParams
from runbooks.cluster.kwok_job_exit import JOB_EXIT_ANNOTATION
from runbooks.cluster.launcher import ClusterRecord
from runbooks.cluster.velero import install_velero_crds
from runbooks.kit.checks import CheckReport
from runbooks.kube_target import KubeTarget
from tasks.etcd import save_snapshot
from tests.conftest import LocalCluster

pytestmark = pytest.mark.cluster

RUNBOOK = str(Path(sys.executable).with_name("runbook"))
GROUP, VERSION = "velero.io", "v1"
H = dt.timedelta(hours=1)


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(hours: float) -> str:
    return rfc3339(dt.datetime.now(dt.UTC) - hours * H)


@pytest.fixture(scope="module")
def velero_crds(cluster: LocalCluster) -> None:
    """The Velero CRDs, installed once and served."""
    install_velero_crds(cluster.api)


class Velero:
    """Writes Velero's objects the way its controllers do (status included)."""

    def __init__(self, cluster: LocalCluster, namespace: str) -> None:
        self.api = client.CustomObjectsApi(cluster.api)
        self.namespace = namespace

    def create(self, plural: str, kind: str, name: str, spec: dict, status: dict, **meta: Any):
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name, "namespace": self.namespace, **meta},
            "spec": spec,
            "status": status,
        }
        return self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body
        )

    def healthy(self) -> None:
        """An Available default location and an Enabled daily schedule."""
        self.create(
            "backupstoragelocations",
            "BackupStorageLocation",
            "default",
            {"provider": "aws", "default": True, "accessMode": "ReadWrite"},
            {"phase": "Available", "lastValidationTime": ago(0.01)},
        )
        self.create(
            "schedules",
            "Schedule",
            "daily",
            {"schedule": "0 2 * * *", "template": {"ttl": "720h0m0s"}},
            {"phase": "Enabled", "lastBackup": ago(11)},
        )

    def backup(self, name: str, phase: str, hours_ago: float, **status: Any) -> None:
        done = phase in ("Completed", "PartiallyFailed", "Failed")
        body: dict[str, Any] = {
            "phase": phase,
            "startTimestamp": ago(hours_ago),
            "errors": 0,
            "warnings": 0,
            "version": 1,
        }
        if done:
            body |= {
                "completionTimestamp": ago(hours_ago - 0.1),
                "expiration": ago(hours_ago - 720),
                "progress": {"totalItems": 42, "itemsBackedUp": 42},
            }
        self.create(
            "backups",
            "Backup",
            name,
            {"includedNamespaces": ["shop"], "storageLocation": "default", "ttl": "720h0m0s"},
            body | status,
            labels={"velero.io/schedule-name": "daily"},
        )


@pytest.fixture
def velero(cluster: LocalCluster, namespace: str, velero_crds: None) -> Velero:
    """Velero's objects in this test's own namespace (the runbook's --velero-namespace)."""
    return Velero(cluster, namespace)


def velero_only(cluster: LocalCluster, namespace: str, **kw: Any) -> BackupCheckParams:
    return BackupCheckParams(
        target=KubeTarget(kubeconfig=cluster.kubeconfig), velero_namespace=namespace, **kw
    )


def problems(report: CheckReport) -> dict[str, str]:
    return {c.id: c.status for c in report.problems}


def evidence(report: CheckReport, check: str) -> list[str]:
    return next(c.evidence for c in report.checks if c.id == check)


def test_fresh_completed_velero_backups_pass(cluster: LocalCluster, velero: Velero):
    velero.healthy()
    velero.backup("daily-20261201020000", "Completed", 11)

    report = run_local(velero_only(cluster, velero.namespace))

    assert problems(report) == {}
    assert report.exit_code == 0


@pytest.mark.parametrize(
    ("phase", "status", "failed_check", "says"),
    [
        ("Completed", {}, "velero.backup.fresh", "older than the RPO 25h"),
        (
            "Failed",
            {"failureReason": "object storage unreachable"},
            "velero.backup.failed",
            "Failed",
        ),
        ("PartiallyFailed", {"errors": 3}, "velero.backup.failed", "PartiallyFailed (3 errors"),
        (
            "FailedValidation",
            {"validationErrors": ["backup storage location 'gone' not found"]},
            "velero.backup.failed",
            "FailedValidation",
        ),
        ("InProgress", {}, "velero.backup.stuck", "InProgress since"),
    ],
    ids=["stale", "failed", "partially-failed", "failed-validation", "stuck-in-progress"],
)
def test_a_bad_velero_backup_fails_its_check_and_nothing_else(
    cluster: LocalCluster, velero: Velero, phase, status, failed_check, says
):
    velero.healthy()
    if failed_check == "velero.backup.fresh":  # the newest good backup is two days old
        velero.backup("daily-20261130020000", "Completed", 49)
    else:  # yesterday's backup was good; the newer one is the problem
        velero.backup("daily-20261201020000", "Completed", 11)
        velero.backup("daily-20261202020000", phase, 5, **status)

    report = run_local(velero_only(cluster, velero.namespace))

    assert problems(report) == {failed_check: "fail"}
    assert any(says in line for line in evidence(report, failed_check)), report.to_text()
    assert report.exit_code == 1


def test_velero_restore_drill_reports_the_restore_phase_and_time(
    cluster: LocalCluster, velero: Velero
):
    velero.healthy()
    velero.backup("daily-20261201020000", "Completed", 11)
    stop = threading.Event()

    def act_as_velero() -> None:
        """Velero's restore controller: a new Restore goes InProgress, then Completed."""
        while not stop.is_set():
            items = velero.api.list_namespaced_custom_object(
                GROUP, VERSION, velero.namespace, "restores"
            )["items"]
            for restore in items:
                if not restore.get("status"):
                    restore["status"] = {
                        "phase": "Completed",
                        "startTimestamp": ago(0.001),
                        "completionTimestamp": ago(0),
                        "errors": 0,
                        "warnings": 1,
                        "progress": {"totalItems": 42, "itemsRestored": 42},
                    }
                    velero.api.replace_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        velero.namespace,
                        "restores",
                        restore["metadata"]["name"],
                        restore,
                    )
            time.sleep(0.2)

    controller = threading.Thread(target=act_as_velero, daemon=True)
    controller.start()
    try:
        report = run_local(velero_only(cluster, velero.namespace, restore_drill=True))
    finally:
        stop.set()
        controller.join()

    assert problems(report) == {}
    said = evidence(report, "restore.velero")
    assert said[0].startswith(f"Restore {velero.namespace}/daily-20261201020000-drill-")
    assert said[0].endswith("of daily-20261201020000 (shop -> drill-shop): Completed")
    assert said[1] == "0 errors, 1 warnings"
    assert said[2].startswith("restore took ")
    restores = velero.api.list_namespaced_custom_object(
        GROUP, VERSION, velero.namespace, "restores"
    )
    assert [r["spec"]["namespaceMapping"] for r in restores["items"]] == [{"shop": "drill-shop"}]
    from runbooks.audit import RecordFilter, get_store

    name = restores["items"][0]["metadata"]["name"]
    audited = [
        (r.phase, r.outcome)
        for r in get_store().records(
            RecordFilter(action="restore.create", target=f"{velero.namespace}/{name}")
        )
    ]
    assert audited == [("intent", None), ("outcome", "created")]


# --- CronJob-based backups: real CronJob -> Job -> KWOK pod ------------------------------------


def _job_template(exit_code: str) -> client.V1JobTemplateSpec:
    return client.V1JobTemplateSpec(
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(annotations={JOB_EXIT_ANNOTATION: exit_code}),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(name="dump", image="busybox:1.36")],
                ),
            ),
        )
    )


def _wait_for(what: str, check, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _finished(job: client.V1Job, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in (job.status.conditions or []))


def test_a_cronjob_whose_last_job_failed_fails_the_last_job_check(
    cluster: LocalCluster, namespace: str
):
    batch = client.BatchV1Api(cluster.api)
    label = f"kube-runbooks.test/backup-{uuid.uuid4().hex[:6]}"
    cronjob = batch.create_namespaced_cron_job(
        namespace,
        client.V1CronJob(
            metadata=client.V1ObjectMeta(name="db-dump", labels={label: "true"}),
            spec=client.V1CronJobSpec(schedule="* * * * *", job_template=_job_template("1")),
        ),
    )
    # An earlier run that succeeded (as `kubectl create job --from=cronjob/db-dump` makes it):
    # the CronJob controller records its lastSuccessfulTime.
    manual = _job_template("0")
    batch.create_namespaced_job(
        namespace,
        client.V1Job(
            metadata=client.V1ObjectMeta(
                name="db-dump-manual",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="batch/v1",
                        kind="CronJob",
                        name="db-dump",
                        uid=cronjob.metadata.uid,
                        controller=True,
                    )
                ],
            ),
            spec=manual.spec,
        ),
    )
    _wait_for(
        "the CronJob's lastSuccessfulTime",
        lambda: batch.read_namespaced_cron_job("db-dump", namespace).status.last_successful_time,
    )
    # The controller's own scheduled run, whose pod KWOK ends with exit code 1.
    failed = _wait_for(
        "the scheduled Job to fail",
        lambda: [
            j.metadata.name
            for j in batch.list_namespaced_job(namespace).items
            if j.metadata.name != "db-dump-manual" and _finished(j, "Failed")
        ],
        timeout=150,
    )
    # (Not suspended: a suspended backup CronJob fails cronjob.fresh, which is another story.)

    report = run_local(
        BackupCheckParams(
            target=KubeTarget(kubeconfig=cluster.kubeconfig),
            velero_namespace=None,
            cronjob_selector=f"{label}=true",
        )
    )

    assert problems(report) == {"cronjob.last-job": "fail"}
    (line,) = evidence(report, "cronjob.last-job")
    assert line.startswith(
        f"{namespace}/db-dump: last Job {failed[0]} Failed: BackoffLimitExceeded"
    )


# --- etcd snapshots: real snapshots of the cluster's etcd, etcdutl built beside it --------------


@pytest.fixture(scope="module")
def etcd(cluster: LocalCluster) -> ClusterRecord:
    return ClusterRecord.model_validate_json(
        (cluster.kubeconfig.parent / "cluster.json").read_text()
    )


@pytest.fixture
def snapshot_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "snapshots"
    directory.mkdir()
    return directory


def etcd_params(cluster: LocalCluster, etcd: ClusterRecord, directory: Path, **kw: Any):
    return BackupCheckParams(
        target=KubeTarget(kubeconfig=cluster.kubeconfig),
        velero_namespace=None,
        etcd_snapshots=directory,
        etcdutl=etcd.binaries / "bin" / "etcdutl",
        **kw,
    )


def take_snapshot(etcd: ClusterRecord, directory: Path, name: str) -> Path:
    return save_snapshot(f"http://127.0.0.1:{etcd.ports.etcd_client}", directory / name)


def test_an_etcd_snapshot_older_than_the_rpo_fails_freshness_only(
    cluster: LocalCluster, etcd: ClusterRecord, snapshot_dir: Path
):
    snapshot = take_snapshot(etcd, snapshot_dir, "etcd-1.db")
    old = time.time() - 26 * 3600
    os.utime(snapshot, (old, old))

    report = run_local(etcd_params(cluster, etcd, snapshot_dir))

    assert problems(report) == {"etcd.snapshot.fresh": "fail"}
    assert evidence(report, "etcd.snapshot.fresh") == [
        f"{snapshot}: written 26h ago, older than the RPO 25h"
    ]
    integrity = evidence(report, "etcd.snapshot.integrity")[0]
    assert f"{snapshot}: hash " in integrity and " keys, " in integrity


def test_a_restore_drill_on_a_real_snapshot_serves_every_key(
    cluster: LocalCluster, etcd: ClusterRecord, snapshot_dir: Path
):
    take_snapshot(etcd, snapshot_dir, "etcd-1.db")
    time.sleep(0.05)  # a distinct mtime: the second is the newest
    take_snapshot(etcd, snapshot_dir, "etcd-2.db")
    before = set(Path("/tmp").glob("kube-runbooks-etcd-drill-*"))

    report = run_local(etcd_params(cluster, etcd, snapshot_dir, restore_drill=True))

    assert problems(report) == {}
    served, rto = evidence(report, "restore.etcd")
    assert served.startswith("the restored etcd serves ")
    keys = served.split(" serves ")[1].split(" keys")[0]
    assert f"the snapshot holds {keys} keys" in served and int(keys) > 100
    assert rto.startswith("restore took ") and rto.endswith("s (measured RTO)")
    assert set(Path("/tmp").glob("kube-runbooks-etcd-drill-*")) == before  # cleaned up
    assert _no_drill_etcd_running()


def _flip(path: Path, offset: int, length: int = 16) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        chunk = f.read(length)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in chunk))


def test_a_restore_drill_on_a_corrupted_snapshot_fails_the_drill(
    cluster: LocalCluster, etcd: ClusterRecord, snapshot_dir: Path
):
    """Damage `snapshot status` cannot see (it reads the database, not the SHA-256 that
    `etcdctl snapshot save` appends): only the restore notices, so only the drill fails."""
    snapshot = take_snapshot(etcd, snapshot_dir, "etcd-1.db")
    _flip(snapshot, snapshot.stat().st_size - 16)

    report = run_local(etcd_params(cluster, etcd, snapshot_dir, restore_drill=True))

    assert problems(report) == {"restore.etcd": "fail"}, report.to_text()
    (line,) = evidence(report, "restore.etcd")
    assert line.startswith("etcdutl snapshot restore: Error: expected sha256")
    assert _no_drill_etcd_running()


def test_a_truncated_snapshot_fails_integrity_and_the_drill(
    cluster: LocalCluster, etcd: ClusterRecord, snapshot_dir: Path
):
    """A partial copy: etcdutl cannot read it, and it does not restore."""
    snapshot = take_snapshot(etcd, snapshot_dir, "etcd-1.db")
    with open(snapshot, "r+b") as f:
        f.truncate(snapshot.stat().st_size // 2)

    report = run_local(etcd_params(cluster, etcd, snapshot_dir, restore_drill=True))

    assert problems(report) == {"etcd.snapshot.integrity": "fail", "restore.etcd": "fail"}
    (said,) = evidence(report, "etcd.snapshot.integrity")
    assert said.startswith(f"{snapshot}: etcdutl snapshot status: ")
    assert evidence(report, "restore.etcd")[0].startswith("etcdutl snapshot restore: ")
    assert _no_drill_etcd_running()


def _no_drill_etcd_running() -> bool:
    return not _drill_etcd_pids()


def test_backup_check_cli_reports_json_and_exits_1_on_a_stale_snapshot(
    cluster: LocalCluster, etcd: ClusterRecord, snapshot_dir: Path
):
    snapshot = take_snapshot(etcd, snapshot_dir, "etcd-1.db")
    old = time.time() - 3 * 3600
    os.utime(snapshot, (old, old))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}

    done = subprocess.run(
        [
            RUNBOOK,
            "backup-check",
            "--rpo",
            "2h",
            "--velero-namespace",
            "",
            "--etcd-snapshots",
            str(snapshot_dir),
            "--etcdutl",
            str(etcd.binaries / "bin" / "etcdutl"),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    answer = json.loads(done.stdout)
    failed = {c["id"]: c["evidence"] for c in answer["checks"] if c["status"] == "fail"}
    assert answer["status"] == "fail"
    assert failed == {"etcd.snapshot.fresh": [f"{snapshot}: written 3h ago, older than the RPO 2h"]}


def test_under_prefect_a_stale_snapshot_fails_the_run_with_the_report_and_audit_trail(
    cluster: LocalCluster, etcd: ClusterRecord, snapshot_dir: Path, prefect_server: str
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.backup_check import backup_check
    from runbooks.audit import RecordFilter, get_store

    snapshot = take_snapshot(etcd, snapshot_dir, "etcd-1.db")
    old = time.time() - 26 * 3600
    os.utime(snapshot, (old, old))

    state = backup_check(etcd_params(cluster, etcd, snapshot_dir), return_state=True)

    assert state.is_failed()
    assert state.message == "backup-check: fail (16 checks: 1 fail, 2 pass, 13 skip)"
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    assert {"backup-check-checks", "backup-check-report"} <= {a.key for a in artifacts}
    records = get_store().records(RecordFilter(flow_run_id=str(run_id)))
    outcomes = {r.details.get("check"): r.outcome for r in records if r.action == "check.result"}
    assert outcomes["etcd.snapshot.fresh"] == "fail"
    assert outcomes["etcd.snapshot.integrity"] == "pass"
    assert records[0].action == "run.start"
    assert (records[-1].action, records[-1].outcome) == ("run.finish", "fail")


DRILL_THAT_NEVER_ANSWERS = """
import sys, time
from pathlib import Path
import tasks.etcd as etcd
from runbooks.backups.facts import SnapshotFile
from tasks.steps import LocalRunner

def never(url, body):  # the restored etcd never answers: the drill waits until stopped
    time.sleep(0.1)
    raise OSError("not yet")

etcd._post = never
snapshot = SnapshotFile(path=sys.argv[2], modified="2026-12-02T00:00:00Z", size=1)
drill = (etcd.etcd_restore_drill, {"etcdutl": Path(sys.argv[1]), "snapshot": snapshot})
LocalRunner().run_all({"drill": drill})
"""


def _exited(child: subprocess.Popen[str]) -> bool:
    """False while the child runs; its error when it ended early."""
    if child.poll() is not None:
        raise AssertionError(
            f"the drill ended early: {child.stderr.read() if child.stderr else ''}"
        )
    return False


def _drill_etcd_pids() -> dict[int, str]:
    """Throwaway etcds of drills: PID -> data dir (from /proc: ps truncates to $COLUMNS)."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        data = [a.removeprefix("--data-dir=") for a in args if a.startswith("--data-dir=")]
        if "--name=drill" in args and data and "kube-runbooks-etcd-drill-" in data[0]:
            found[int(cmdline.parent.name)] = data[0]
    return found


def test_an_interrupted_drill_stops_its_etcd_and_removes_its_scratch_data(
    cluster: LocalCluster, etcd: ClusterRecord, snapshot_dir: Path
):
    snapshot = take_snapshot(etcd, snapshot_dir, "etcd-1.db")
    before = set(_drill_etcd_pids())
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            DRILL_THAT_NEVER_ANSWERS,
            str(etcd.binaries / "bin" / "etcdutl"),
            str(snapshot),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = _wait_for(
            "the drill's etcd to start",
            lambda: (
                {p: d for p, d in _drill_etcd_pids().items() if p not in before} or _exited(child)
            ),
            timeout=30,
        )
        ((pid, data_dir),) = started.items()
        assert Path(data_dir).is_dir()

        child.send_signal(signal.SIGINT)  # Ctrl-C
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()

    assert "KeyboardInterrupt" in (child.stderr.read() if child.stderr else "")
    assert pid not in _drill_etcd_pids()
    assert not Path(data_dir).parent.exists()  # the whole scratch directory


def test_a_failed_backup_is_posted_to_the_slack_channel(
    cluster: LocalCluster, velero: Velero, monkeypatch: pytest.MonkeyPatch
):
    from devtools.slack_standin import SlackStandin

    velero.healthy()
    velero.backup("daily-20261201020000", "Completed", 11)
    velero.backup("daily-20261202020000", "Failed", 5, failureReason="object storage unreachable")
    with SlackStandin() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
        monkeypatch.setenv("RUNBOOK_SLACK_CHANNEL", "C0OPS")
        monkeypatch.setenv("RUNBOOK_SLACK_API_URL", slack.api_url)

        report = run_local(velero_only(cluster, velero.namespace))

    (posted,) = slack.top_level("C0OPS")
    assert posted.text.splitlines() == [
        f"*{report.summary_line()}*",
        "• `fail` *velero.backup.failed* (blocker): No schedule's latest finished backup failed. "
        "schedule daily: daily-20261202020000 Failed (0 errors, 0 warnings): "
        "object storage unreachable",
    ]
