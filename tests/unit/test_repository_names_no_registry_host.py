"""The repository names no package or image registry host: CI and the build use the machine's
own configuration (pip's index, GOPROXY, the container runtime's registries), and an operator
points the manifests at their own registry. A fetch by hand from a named host is how a
toolchain ends up unpinned and unverified."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Spelled in parts so that this file does not name them either.
REGISTRY_HOSTS = [
    ".".join(parts)
    for parts in (
        ("proxy", "golang", "org"),
        ("sum", "golang", "org"),
        ("pypi", "org"),
        ("files", "pythonhosted", "org"),
        ("registry", "npmjs", "org"),
        ("ghcr", "io"),
        ("docker", "io"),
        ("quay", "io"),
        ("gcr", "io"),
        ("registry", "k8s", "io"),
        ("dl", "google", "com"),
        ("go", "dev/dl"),
    )
]


def _tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    paths = [ROOT / p for p in listed.decode().split("\0") if p]
    return [p for p in paths if p.is_file() and p.suffix not in {".png", ".jpg", ".ico"}]


def test_no_tracked_file_names_a_registry_host() -> None:
    found = []
    for path in _tracked_text_files():
        text = path.read_text(errors="replace").lower()
        found += [f"{path.relative_to(ROOT)}: {host}" for host in REGISTRY_HOSTS if host in text]
    assert found == []
