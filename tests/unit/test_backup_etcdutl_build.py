"""A binary cache built before etcdutl joined it gets etcdutl added, nothing else rebuilt; a
second run finds it complete at once. Needs Go and the etcd module (as `runbook cluster build`)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BUILT = sorted(glob.glob(os.path.expanduser("~/.cache/kube-runbooks/cluster/k8s-*/bin")))


def _build(cache: Path) -> subprocess.CompletedProcess[str]:
    script = resources.files("runbooks.cluster").joinpath("build.sh")
    return subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "RUNBOOK_CLUSTER_CACHE": str(cache)},
        timeout=600,
        check=False,
    )


@pytest.mark.skipif(not BUILT or shutil.which("go") is None, reason="no built control plane")
def test_a_cache_without_etcdutl_gets_only_etcdutl(tmp_path: Path):
    source = Path(BUILT[-1]).parent
    cached = tmp_path / source.name
    (cached / "bin").mkdir(parents=True)
    (cached / "stages").mkdir()
    for binary in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
        (cached / "bin" / binary).symlink_to(source / "bin" / binary)
    for binary in ("etcd", "kwok"):
        (cached / "bin" / binary).symlink_to(source / "bin" / binary)

    first = _build(tmp_path)

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(cached)
    assert "adding etcdutl" in first.stderr and "build_etcdutl took" in first.stderr
    etcdutl = cached / "bin" / "etcdutl"
    assert not etcdutl.is_symlink() and os.access(etcdutl, os.X_OK)
    assert (cached / "bin" / "etcd").is_symlink()  # the rest untouched
    version = subprocess.run([str(etcdutl), "version"], capture_output=True, text=True, check=True)
    etcd = subprocess.run(
        [str(cached / "bin" / "etcd"), "--version"], capture_output=True, text=True
    )
    assert version.stdout.split()[2] == etcd.stdout.split()[2]  # the same etcd release

    second = _build(tmp_path)

    assert second.returncode == 0 and "cached:" in second.stderr
    assert not list((cached / "bin").glob("*.partial.*"))
