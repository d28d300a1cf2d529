"""Find (or build) the control-plane binaries in the version-keyed cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from runbooks.settings import get_settings

COMPONENTS = (
    "etcd",
    "etcdutl",  # not run by the cluster: the backup checks' snapshot status and restore drill
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
)


# The version `cluster up` and `cluster build` use unless told otherwise; SUPPORTED are the
# versions the recipe (build.sh, the launcher's flags) is known to work for.
DEFAULT_KUBERNETES_VERSION = "v1.36.3"
SUPPORTED_KUBERNETES_VERSIONS = ("v1.35.4", "v1.36.3")
_VERSION = re.compile(r"^v1\.(\d+)\.(\d+)$")


class BuildError(RuntimeError):
    """The control plane could not be built; the message says which step failed."""


class UnsupportedVersion(ValueError):
    """A Kubernetes version the local control plane cannot build or run (a user mistake)."""


def check_kubernetes_version(version: str) -> str:
    """Return ``version`` if the recipe supports it; otherwise say which ones it does."""
    if version not in SUPPORTED_KUBERNETES_VERSIONS:
        raise UnsupportedVersion(
            f"Kubernetes {version!r} is not supported by the local cluster; "
            f"use one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}"
        )
    return version


def minor_version(version: str) -> int:
    """The minor number of ``v1.N.P``: the launcher's flags differ by minor version."""
    match = _VERSION.match(version)
    if match is None:
        raise UnsupportedVersion(f"{version!r} is not a Kubernetes version like v1.36.3")
    return int(match.group(1))


class Binaries(BaseModel):
    """A complete cache directory: ``bin/`` with every component and KWOK's ``stages/``."""

    root: Path

    def path(self, component: str) -> Path:
        return self.root / "bin" / component

    @property
    def stages(self) -> Path:
        return self.root / "stages"


def ensure_binaries(kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> Binaries:
    """Return the cached binaries for ``kubernetes_version``, building them first if missing.

    The build script is idempotent and locked, so concurrent callers wait instead of colliding.
    One cache dir per Kubernetes version; a second version shares etcd, etcdutl and KWOK with
    the first (hard links) and builds only the Kubernetes binaries.
    """
    check_kubernetes_version(kubernetes_version)
    if shutil.which("go") is None:
        raise BuildError(
            "the local control plane is built from Go modules, but `go` is not on PATH"
        )
    script = resources.files("runbooks.cluster").joinpath("build.sh")
    env_cache = get_settings().cache_dir / "cluster"
    with resources.as_file(script) as path:
        proc = subprocess.run(
            ["bash", str(path)],
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
            text=True,
            env={
                **os.environ,
                "RUNBOOK_CLUSTER_CACHE": str(env_cache),
                "K8S_VERSION": kubernetes_version,
            },
            check=False,
        )
    if proc.returncode != 0:
        raise BuildError(f"building the control plane failed (exit {proc.returncode}); see above")
    root = Path(proc.stdout.strip().splitlines()[-1])
    binaries = Binaries(root=root)
    missing = [c for c in COMPONENTS if not binaries.path(c).exists()]
    if missing:
        raise BuildError(f"build finished but {', '.join(missing)} missing under {root}")
    return binaries
