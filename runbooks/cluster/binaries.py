"""Find (or build) the control-plane binaries in the version-keyed cache."""

from __future__ import annotations

import os
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


class BuildError(RuntimeError):
    """The control plane could not be built; the message says which step failed."""


class Binaries(BaseModel):
    """A complete cache directory: ``bin/`` with every component and KWOK's ``stages/``."""

    root: Path

    def path(self, component: str) -> Path:
        return self.root / "bin" / component

    @property
    def stages(self) -> Path:
        return self.root / "stages"


def ensure_binaries() -> Binaries:
    """Return the cached binaries, building them first if the cache lacks them.

    The build script is idempotent and locked, so concurrent callers wait instead of colliding.
    """
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
            env={**os.environ, "RUNBOOK_CLUSTER_CACHE": str(env_cache)},
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
