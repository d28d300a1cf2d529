"""The upgrade's version rules: one minor at a time, never down; kubelets within skew after."""

from __future__ import annotations

import pytest

from runbooks.upgrade.versions import kubelets_outside_skew, parse_version, step_refusal


@pytest.mark.parametrize(
    ("current", "target", "refused_because"),
    [
        ("v1.35.4", "v1.36.3", None),  # one minor
        ("v1.35.4", "1.36.0", None),  # any patch of the next minor
        ("v1.36.1", "v1.36.3", None),  # a patch
        ("v1.36.3", "v1.36.3", None),  # a rerun at the target
        ("v1.34.2", "v1.36.3", "skips 1 minor version(s) (v1.35)"),
        ("v1.33.0", "v1.36.0", "skips 2 minor version(s) (v1.34, v1.35)"),
        ("v1.36.3", "v1.35.4", "downgrade is not supported"),
        ("v1.36.3", "v1.36.1", "downgrade is not supported"),
        ("v1.36.3", "v2.0.0", "changes the major version"),
    ],
)
def test_target_is_a_patch_or_the_next_minor(
    current: str, target: str, refused_because: str | None
) -> None:
    why = step_refusal(parse_version(current), parse_version(target))
    if refused_because is None:
        assert why is None
    else:
        assert why is not None and refused_because in why


def test_a_skipped_minor_names_the_version_to_go_to_first() -> None:
    why = step_refusal(parse_version("v1.34.2"), parse_version("v1.36.3"))
    assert why is not None and "first to v1.35.x" in why


@pytest.mark.parametrize(
    ("kubelets", "target", "outside"),
    [
        ({"a": "v1.35.4", "b": "v1.33.0"}, "v1.36.3", []),  # 3 minors older: allowed
        ({"a": "v1.35.4", "b": "v1.32.0"}, "v1.36.3", ["b"]),  # 4 minors older after
        ({"a": "v1.32.9", "b": "v1.32.0"}, "v1.35.0", []),
        ({"a": "v1.37.0"}, "v1.36.3", ["a"]),  # newer than the API server
        ({"a": ""}, "v1.36.3", ["a"]),  # no version reported: cannot be judged within
    ],
)
def test_kubelets_that_would_fall_outside_skew_are_named(
    kubelets: dict[str, str], target: str, outside: list[str]
) -> None:
    assert sorted(kubelets_outside_skew(parse_version(target), kubelets)) == outside


def test_the_reason_says_how_far_behind_the_kubelet_would_be() -> None:
    why = kubelets_outside_skew(parse_version("v1.36.3"), {"old": "v1.32.0"})["old"]
    assert "kubelet v1.32.0" in why and "4 minors older" in why and "at most 3" in why
