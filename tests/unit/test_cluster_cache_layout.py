"""The build cache: one dir per Kubernetes version, etcd/etcdutl/KWOK shared between versions.

build.sh runs for real against a stand-in `go` on PATH that records what it was asked to build
and writes tiny executables, so the cache layout is checked in a second, without a Go build.
"""

from __future__ import annotations

import os
import subprocess
from importlib import resources
from pathlib import Path

from typer.testing import CliRunner

from runbooks.cli.cluster import app

FAKE_GO = r"""#!/usr/bin/env bash
# Stand-in for `go`: log the call, produce what build.sh expects.
echo "$*" >> "$FAKE_GO_LOG"
exe() { printf '#!/bin/sh\necho "%s fake"\n' "$(basename "$1")" > "$1"; chmod +x "$1"; }
case "$1 $2" in
  "env GOVERSION") echo go1.26.8 ;;
  "env GOMODCACHE") echo "$FAKE_GO_MODCACHE" ;;
  "mod download")
    gomod="$PWD/k8s.mod"
    for i in $(seq 1 30); do echo "	k8s.io/s$i => ./staging/src/k8s.io/s$i"; done > "$gomod"
    echo "{\"GoMod\": \"$gomod\"}" ;;
  build*)
    shift; out=""; pkgs=()
    while (( $# )); do
      case "$1" in -o) out="$2"; shift 2 ;; -ldflags) shift 2 ;; *) pkgs+=("$1"); shift ;; esac
    done
    if [[ "$out" == */ ]]; then for p in "${pkgs[@]}"; do exe "$out$(basename "$p")"; done
    else exe "$out"; fi ;;
  install*) exe "$GOBIN/kwok" ;;
esac
exit 0
"""


def _build(tmp_path: Path, version: str) -> tuple[Path, list[str]]:
    """Run the real build.sh for ``version``; return the cache dir and the go calls it made."""
    fake = tmp_path / "fakebin"
    if not fake.exists():
        fake.mkdir()
        (fake / "go").write_text(FAKE_GO)
        (fake / "go").chmod(0o755)
        stage = tmp_path / "modcache" / "sigs.k8s.io" / "kwok@v0.8.0" / "kustomize" / "stage"
        stage.mkdir(parents=True)
        (stage / "node-heartbeat.yaml").write_text("kind: Stage\n")
    log = tmp_path / "go.log"
    log.write_text("")
    script = resources.files("runbooks.cluster").joinpath("build.sh")
    with resources.as_file(script) as path:
        proc = subprocess.run(
            ["bash", str(path)],
            capture_output=True,
            text=True,
            check=True,
            env={
                **os.environ,
                "PATH": f"{fake}:{os.environ['PATH']}",
                "RUNBOOK_CLUSTER_CACHE": str(tmp_path / "cache"),
                "K8S_VERSION": version,
                "FAKE_GO_LOG": str(log),
                "FAKE_GO_MODCACHE": str(tmp_path / "modcache"),
            },
        )
    return Path(proc.stdout.strip().splitlines()[-1]), log.read_text().splitlines()


def _built(calls: list[str]) -> set[str]:
    """Which binaries the go calls produced (build -o targets and installs)."""
    names: set[str] = set()
    for call in calls:
        words = call.split()
        if words[0] == "build":
            out = words[words.index("-o") + 1]
            if out.endswith("/"):
                names |= {w.rsplit("/", 1)[-1] for w in words if w.startswith("k8s.io/kubernetes")}
            else:
                names.add(Path(out).name.split(".partial")[0])
        elif words[0] == "install":
            names.add("kwok")
    return names


def test_each_kubernetes_version_gets_its_own_cache_dir_named_by_every_version(
    tmp_path: Path,
) -> None:
    first, _ = _build(tmp_path, "v1.36.3")
    second, _ = _build(tmp_path, "v1.35.4")
    assert first.name == "k8s-v1.36.3_etcd-v3.6.16_kwok-v0.8.0_go1.26.8"
    assert second.name == "k8s-v1.35.4_etcd-v3.6.16_kwok-v0.8.0_go1.26.8"
    for root in (first, second):
        assert {p.name for p in (root / "bin").iterdir()} == {
            "etcd",
            "etcdutl",
            "kwok",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubectl",
        }
        assert (root / "stages" / "node-heartbeat.yaml").exists()


def test_a_second_kubernetes_version_builds_only_the_kubernetes_binaries(tmp_path: Path) -> None:
    first, calls = _build(tmp_path, "v1.36.3")
    assert _built(calls) >= {"etcd", "etcdutl", "kwok", "kube-apiserver"}
    second, calls = _build(tmp_path, "v1.35.4")
    assert _built(calls) == {
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
    }
    for shared in ("etcd", "etcdutl", "kwok"):  # hard links: no second copy on disk
        assert (second / "bin" / shared).stat().st_ino == (first / "bin" / shared).stat().st_ino


def test_a_built_version_is_reused_without_building_anything(tmp_path: Path) -> None:
    _build(tmp_path, "v1.36.3")
    _build(tmp_path, "v1.35.4")
    for version in ("v1.36.3", "v1.35.4"):
        root, calls = _build(tmp_path, version)
        assert f"k8s-{version}_" in root.name
        assert _built(calls) == set()


def test_building_an_unsupported_version_is_refused_in_one_line_exit_2() -> None:
    result = CliRunner().invoke(app, ["build", "--kubernetes-version", "v1.20.0"])
    assert result.exit_code == 2
    assert "v1.35.4, v1.36.3" in result.output
