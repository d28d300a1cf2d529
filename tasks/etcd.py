"""etcd snapshots: find the newest, ask etcdutl about them, and drill a restore of the newest.

The restore drill restores into a scratch data directory, starts a throwaway etcd bound to
127.0.0.1 on free ports, counts its keys and compares them (and the revision) with what etcdutl
read from the snapshot, then stops that etcd by its PID and removes the directory, also when
interrupted. The time from "restore" to "serving the keys" is the measured restore time (RTO).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from runbooks.backups.facts import Drill, EtcdSnapshots, SnapshotFile, SnapshotStatus
from runbooks.lifetime import stop_with_this_process
from tasks.kube.retry import INTERRUPT

# How many of the newest files are inspected: the newest, and the previous one to compare with.
INSPECTED = 2
ETCDUTL_SECONDS = 120


class EtcdutlMissing(RuntimeError):
    """etcdutl is not where it was said to be, nor on PATH."""


class DrillInterrupted(RuntimeError):
    """The run was stopped while the drill waited; its etcd is stopped and its data removed."""


def find_etcdutl(explicit: Path | None = None) -> Path:
    """``--etcdutl`` when given, else ``etcdutl`` on PATH."""
    if explicit is not None:
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            raise EtcdutlMissing(f"--etcdutl {explicit} is not an executable file")
        return explicit
    found = shutil.which("etcdutl")
    if found is None:
        raise EtcdutlMissing("etcdutl not found on PATH; install it or pass --etcdutl PATH")
    return Path(found)


def _last_line(text: str) -> str:
    """etcdutl's own verdict: its ``Error:`` or Go ``panic:`` line (a panic ends in a stack
    trace, whose last line says nothing), else the last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    verdicts = [line for line in lines if line.startswith(("Error:", "panic:"))]
    return (verdicts or lines or [""])[-1]


def snapshot_status(etcdutl: Path, path: Path) -> SnapshotStatus:
    """``etcdutl snapshot status -w json``; RuntimeError with etcdutl's own words on failure."""
    proc = subprocess.run(
        [str(etcdutl), "snapshot", "status", str(path), "-w", "json"],
        capture_output=True,
        text=True,
        timeout=ETCDUTL_SECONDS,
        check=False,
    )
    if proc.returncode != 0:
        why = _last_line(proc.stderr) or _last_line(proc.stdout) or f"exit {proc.returncode}"
        raise RuntimeError(f"etcdutl snapshot status: {why}")
    return SnapshotStatus.model_validate_json(proc.stdout.strip().splitlines()[-1])


def newest_files(directory: Path) -> list[Path]:
    """Regular, non-hidden files, newest first (a snapshot being written is usually a dot-
    or ``.part`` file, which is left out)."""
    files = [
        p
        for p in directory.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".part")
    ]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


@task(task_run_name="read etcd snapshots in {directory}", cache_policy=NO_CACHE)
def read_snapshots(directory: Path, etcdutl: Path | None) -> EtcdSnapshots:
    """The newest snapshot files and what etcdutl says about each."""
    try:
        paths = newest_files(directory)[:INSPECTED]
    except OSError as exc:
        return EtcdSnapshots(directory=str(directory), error=f"cannot read {directory}: {exc}")
    files = []
    for path in paths:
        stat = path.stat()
        item = SnapshotFile(
            path=str(path),
            modified=dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC),
            size=stat.st_size,
        )
        try:
            item.status = snapshot_status(find_etcdutl(etcdutl), path)
        except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
            item.status_error = _last_line(str(exc)) or type(exc).__name__
        files.append(item)
    return EtcdSnapshots(directory=str(directory), files=files)


def save_snapshot(endpoint: str, target: Path) -> Path:
    """A snapshot of a running etcd through its HTTP gateway (``/v3/maintenance/snapshot``),
    as ``etcdctl snapshot save`` takes it: the database with its SHA-256 appended."""
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}/v3/maintenance/snapshot", data=b"{}", method="POST"
    )
    partial = target.with_name(f".{target.name}.part")
    with urllib.request.urlopen(request, timeout=60) as answer, open(partial, "wb") as out:
        for line in answer:
            if not line.strip():
                continue
            message = json.loads(line)
            if "error" in message:
                raise RuntimeError(f"etcd refused the snapshot: {message['error']}")
            out.write(base64.b64decode(message.get("result", {}).get("blob", "")))
    partial.replace(target)
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def etcd_beside(etcdutl: Path) -> Path:
    """The etcd server for the drill: beside etcdutl (one release), else on PATH."""
    beside = etcdutl.with_name("etcd")
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("etcd")
    if found is None:
        raise EtcdutlMissing(f"no etcd beside {etcdutl} nor on PATH for the restore drill")
    return Path(found)


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return dict(json.loads(answer.read()))


def _count_keys(client_url: str, deadline: float) -> tuple[int, int]:
    """(keys, revision) of the throwaway etcd, once it answers (it may still be starting)."""
    everything = base64.b64encode(b"\0").decode()
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if INTERRUPT.is_set():  # Ctrl-C / SIGTERM: stop waiting; the caller cleans up
            raise DrillInterrupted("interrupted before the restored etcd answered")
        try:
            answer = _post(
                f"{client_url}/v3/kv/range",
                {"key": everything, "range_end": everything, "count_only": True},
            )
            header = answer.get("header") or {}
            revision = int(header.get("revision", 0)) if isinstance(header, dict) else 0
            return int(str(answer.get("count", 0))), revision
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"the restored etcd did not answer in time ({last})")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """By PID: SIGTERM, then SIGKILL if it has not gone within 10 s."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@task(task_run_name="restore drill of {snapshot.path}", cache_policy=NO_CACHE)
def etcd_restore_drill(etcdutl: Path, snapshot: SnapshotFile, timeout: float = 120) -> Drill:
    """Restore ``snapshot`` into a scratch directory, serve it from a throwaway etcd, compare."""
    source = snapshot.path
    etcd = etcd_beside(etcdutl)
    scratch = Path(tempfile.mkdtemp(prefix="kube-runbooks-etcd-drill-"))
    proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        peer, client_port = _free_port(), _free_port()
        peer_url, client_url = f"http://127.0.0.1:{peer}", f"http://127.0.0.1:{client_port}"
        data = scratch / "data"
        restore = subprocess.run(
            [
                str(etcdutl),
                "snapshot",
                "restore",
                source,
                f"--data-dir={data}",
                "--name=drill",
                f"--initial-cluster=drill={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if restore.returncode != 0:
            why = _last_line(restore.stderr) or f"exit {restore.returncode}"
            return Drill(source=source, ok=False, evidence=[f"etcdutl snapshot restore: {why}"])
        with open(scratch / "etcd.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    str(etcd),
                    "--name=drill",
                    f"--data-dir={data}",
                    f"--listen-client-urls={client_url}",
                    f"--advertise-client-urls={client_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=drill={peer_url}",
                    "--listen-metrics-urls=",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=stop_with_this_process(signal.SIGKILL),  # gone if we are killed
            )
        try:
            keys, revision = _count_keys(client_url, started + timeout)
        except DrillInterrupted:
            raise
        except RuntimeError as exc:
            tail = _last_line((scratch / "etcd.log").read_text(errors="replace"))
            return Drill(source=source, ok=False, evidence=[str(exc), f"etcd log: {tail}"])
        seconds = time.monotonic() - started
        return _compare(source, snapshot.status, keys, revision, seconds)
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(scratch, ignore_errors=True)


def _compare(
    source: str, status: SnapshotStatus | None, keys: int, revision: int, seconds: float
) -> Drill:
    served = f"the restored etcd serves {keys} keys at revision {revision}"
    if status is None:
        return Drill(
            source=source,
            ok=keys > 0,
            evidence=[f"{served} (etcdutl could not read the snapshot to compare)"],
            seconds=seconds,
        )
    same = keys == status.total_keys and revision == status.revision
    expected = f"the snapshot holds {status.total_keys} keys at revision {status.revision}"
    return Drill(
        source=source,
        ok=same and keys > 0,
        evidence=[f"{served}; {expected}" + ("" if same else ": they differ")],
        seconds=seconds,
    )
