"""The baseline: the published JSON Schema is the model's, the shipped and documented
baselines are valid, and selectors match as kubectl's do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbooks.verify.baseline_file import load_baseline, parse_baseline, shipped_baseline
from runbooks.verify.schema import PUBLISHED, baseline_schema
from runbooks.verify.selector import parse_selector, selects

DOC = Path(__file__).resolve().parents[2] / "docs" / "runbooks" / "provision-verification.md"


def test_published_schema_is_generated_from_the_model() -> None:
    assert PUBLISHED.read_text() == baseline_schema(), (
        "regenerate: python -m runbooks.verify.schema > docs/baseline.schema.json"
    )


def test_the_published_schema_refuses_unknown_keys() -> None:
    import json

    schema = json.loads(PUBLISHED.read_text())
    assert schema["additionalProperties"] is False
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values())


def test_the_shipped_local_baseline_is_valid_and_declares_every_section_it_can() -> None:
    baseline = load_baseline(shipped_baseline("local"))
    assert baseline.version and baseline.nodepools and baseline.rbac and baseline.certificates
    assert baseline.storage and baseline.storage.require_default_class is False


def test_the_kubeadm_example_in_the_docs_is_a_valid_baseline() -> None:
    text = DOC.read_text()
    block = re.search(r"kubeadm-example.*?```yaml\n(.*?)```", text, re.S)
    assert block, "the kubeadm example block is missing from the docs"
    baseline = parse_baseline(block.group(1), "kubeadm example")
    assert baseline.workloads and len(baseline.workloads) == 4


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ("type=kwok", {"type": "kwok"}, True),
        ("type==kwok", {"type": "real"}, False),
        ("type!=kwok", {}, True),
        (
            "node-role.kubernetes.io/control-plane",
            {"node-role.kubernetes.io/control-plane": ""},
            True,
        ),
        (
            "!node-role.kubernetes.io/control-plane",
            {"node-role.kubernetes.io/control-plane": ""},
            False,
        ),
        ("zone in (a, b),tier notin (db)", {"zone": "b", "tier": "web"}, True),
        ("zone in (a,b)", {"zone": "c"}, False),
        ("", {"any": "thing"}, True),
    ],
)
def test_label_selectors_match_as_kubectl(
    selector: str, labels: dict[str, str], selected: bool
) -> None:
    assert selects(parse_selector(selector), labels) is selected


@pytest.mark.parametrize("selector", ["a==b==c", "in (x)", "a in x", "=b", "a,,b"])
def test_malformed_selectors_are_refused(selector: str) -> None:
    with pytest.raises(ValueError, match="not a label selector requirement"):
        parse_selector(selector)
