"""Kubernetes versions (``v1.36.3``, ``1.36``) as comparable tuples, and the skew policy."""

from __future__ import annotations

import re

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


def parse_version(text: str) -> tuple[int, ...]:
    """(major, minor[, patch]); ValueError for anything else (``one.two``, ``1``)."""
    m = _VERSION.match(text.strip())
    if not m:
        raise ValueError(f"not a Kubernetes version: {text!r} (expected e.g. 1.36 or v1.36.3)")
    return tuple(int(g) for g in m.groups() if g is not None)


def in_range(
    version: tuple[int, ...], low: tuple[int, ...] | None, high: tuple[int, ...] | None
) -> bool:
    """Inclusive on both ends; a bound without a patch covers every patch of its minor."""
    if low is not None and version[: len(low)] < low:
        return False
    return not (high is not None and version[: len(high)] > high)


def skew_problem(kubelet: str, server: str) -> str | None:
    """Why ``kubelet`` breaks the skew policy against the API server ``server``, or None.

    The policy (kubernetes.io "Version Skew Policy"): a kubelet must not be newer than the API
    server, and at most 3 minors older (2 for kubelets before 1.25).
    """
    try:
        k, s = parse_version(kubelet), parse_version(server)
    except ValueError as exc:
        return str(exc)
    if k[0] != s[0]:
        return f"major version {k[0]} differs from the API server's {s[0]}"
    if k[:2] > s[:2]:
        return f"newer than the API server ({server})"
    allowed = 3 if k[1] >= 25 else 2
    if s[1] - k[1] > allowed:
        return f"{s[1] - k[1]} minors older than the API server ({server}); at most {allowed}"
    return None
