"""`runbook verify` given a bad baseline or bad flags: one line naming what is wrong, exit 2,
and the cluster never contacted (the kubeconfig points at a port nobody listens on)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from runbooks.cli.main import app
from runbooks.verify.baseline_file import shipped_baseline

GOOD = shipped_baseline("local").read_text()

# (case, baseline text or None, extra flags, phrase the one line must contain)
CASES: list[tuple[str, str | None, list[str], str]] = [
    ("YAML syntax error", "version: {min: 1.36\n", [], "line 2: not valid YAML"),
    ("empty file", "", [], "empty"),
    ("a list, not a mapping", "- version\n", [], "line 1: a baseline is a mapping"),
    ("a scalar", "just words\n", [], "not a str"),
    (
        "unknown top-level key",
        "version: {min: '1.36'}\nnodepool: []\n",
        [],
        "line 2: unknown key 'nodepool' (known: version, nodepools,",
    ),
    (
        "unknown key inside a pool",
        "nodepools:\n  - name: w\n    selektor: a=b\n",
        [],
        "line 3: unknown key 'selektor' in nodepools.0 (known: name, selector,",
    ),
    ("duplicate key", "version: {}\nversion: {}\n", [], "line 2: not valid YAML: duplicate key"),
    ("version not a version", "version: {min: one.two}\n", [], "not a Kubernetes version"),
    ("version min above max", "version: {min: '1.37', max: '1.36'}\n", [], "is above max"),
    (
        "pool count and min",
        "nodepools: [{name: w, selector: a=b, count: 2, min: 1}]\n",
        [],
        "give count, or min/max",
    ),
    (
        "pool min above max",
        "nodepools: [{name: w, selector: a=b, min: 3, max: 1}]\n",
        [],
        "min 3 is above max 1",
    ),
    (
        "pool selector not a selector",
        "nodepools: [{name: w, selector: 'a==b==c'}]\n",
        [],
        "not a label selector requirement",
    ),
    ("negative node count", "nodepools: [{name: w, selector: a, count: -1}]\n", [], "count"),
    (
        "workload of an unknown kind",
        "workloads: [{namespace: kube-system, kind: Job, name: x}]\n",
        [],
        "workloads.0.kind",
    ),
    (
        "workload without a name",
        "workloads: [{namespace: kube-system, kind: Deployment}]\n",
        [],
        "workloads.0.name: Field required",
    ),
    (
        "namespace rule with name and selector",
        "namespaces: [{name: a, selector: b=c}]\n",
        [],
        "exactly one",
    ),
    ("namespace rule with neither", "namespaces: [{labels: {a: b}}]\n", [], "exactly one"),
    (
        "expiry window of zero days",
        "certificates: {expiry_window_days: 0}\n",
        [],
        "expiry_window_days",
    ),
    (
        "cluster-admin subject of an unknown kind",
        "rbac: {cluster_admin_subjects: [{kind: Robot, name: r2}]}\n",
        [],
        "rbac.cluster_admin_subjects.0.kind",
    ),
    (
        "ServiceAccount subject without a namespace",
        "rbac: {cluster_admin_subjects: [{kind: ServiceAccount, name: ci}]}\n",
        [],
        "needs a namespace",
    ),
    (
        "secret without a namespace",
        "certificates: {secrets: [{name: web-tls}]}\n",
        [],
        "certificates.secrets.0.namespace: Field required",
    ),
    ("storage flag of the wrong type", "storage: {require_default_class: maybe}\n", [], "storage"),
    ("unknown --only id", GOOD, ["--only", "api.health"], "unknown check id api.health"),
    ("unknown --skip id", GOOD, ["--skip", "nodes.ready"], "unknown check id nodes.ready"),
    ("empty id in --only", GOOD, ["--only", "api.livez,,nodes.taints"], "--only takes check ids"),
    ("--output yaml", GOOD, ["--output", "yaml"], "--output must be text or json"),
    (
        "baseline check without a baseline",
        None,
        ["--only", "storage.default-class"],
        "needs a baseline",
    ),
    ("missing baseline file", None, ["--baseline", "/nonexistent/b.yaml"], "not found"),
    ("baseline is a directory", None, ["--baseline", "/tmp"], "is a directory"),
    ("unknown --context", GOOD, ["--context", "nope"], "nope"),
    ("missing --kubeconfig", GOOD, ["--kubeconfig", "/nonexistent/kubeconfig"], "/nonexistent"),
]


def _kubeconfig(tmp_path: Path) -> Path:
    """A valid kubeconfig for a cluster that does not exist: any contact would hang or fail."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("text", "flags", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, text: str | None, flags: list[str], phrase: str
) -> None:
    args = ["verify", "--kubeconfig", str(_kubeconfig(tmp_path))]
    if text is not None:
        baseline = tmp_path / "baseline.yaml"
        baseline.write_text(text)
        args += ["--baseline", str(baseline)]
    result = CliRunner().invoke(app, [*args, *flags])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert phrase in lines[0], lines[0]
    assert result.stdout == ""  # no report: nothing was read


def test_bad_input_table_has_twenty_cases() -> None:
    assert len(CASES) >= 20


def test_an_unknown_key_names_the_file_and_line(tmp_path: Path) -> None:
    baseline = tmp_path / "prod.yaml"
    baseline.write_text("version:\n  min: '1.35'\n\nstorage:\n  default: gp3\n")
    result = CliRunner().invoke(app, ["verify", "--baseline", str(baseline)])
    assert result.stderr.strip() == (
        "error: prod.yaml line 5: unknown key 'default' in storage "
        "(known: require_default_class, default_class)"
    )
