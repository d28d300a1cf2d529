"""The `job` action's Job: a name per node and run that never collides, labels that are always
valid, full identities in annotations, and an image that ends up verbatim whatever it contains."""

from __future__ import annotations

import re

import pytest

from tasks.kube.jobs import job_name, render_job

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

POOL = "gke-prod-eu1-default-pool-5f3c9a7e-"  # GKE-style: names differ only at the end
LONG_A = POOL + "grp-aaaa-node-0001"
LONG_B = POOL + "grp-aaaa-node-0002"
VERY_LONG = ("a" * 60 + ".") * 4  # a DNS subdomain may be 253 characters
RUN = "local-0123456789ab"
PREFECT_RUN = "6f1c2b1e-1111-4000-8000-000000000001"


def manifest(node: str = "worker-1", run_id: str = RUN, image: str = "busybox:1.36") -> dict:
    return render_job(node, run_id, "kube-runbooks-jobs", image, ["echo", "hi"], 600)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((LONG_A, RUN), (LONG_B, RUN)),  # differ after 40 characters
        ((VERY_LONG, RUN), (VERY_LONG[:-2] + "b.", RUN)),  # differ after 250
        (("worker-1", "local-abc000000001"), ("worker-1", "local-abc000000002")),  # same 3 hex
        (("worker-1", PREFECT_RUN), ("worker-1", PREFECT_RUN[:-1] + "2")),  # same 8 first
        (("Worker.1", RUN), ("worker-1", RUN)),  # the same after cleaning up for DNS
    ],
)
def test_two_nodes_or_two_runs_never_share_a_job_name(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    assert job_name(*first) != job_name(*second)


@pytest.mark.parametrize(
    "node", ["worker-1", LONG_A, VERY_LONG, "Node_With.Dots-", "ip-10-0-0-1.ec2.internal", "-x-"]
)
def test_job_name_is_a_dns_label_and_starts_with_the_node_name(node: str) -> None:
    name = job_name(node, RUN)
    assert len(name) <= 63 and DNS1123_LABEL.match(name), name
    readable = re.sub(r"[^a-z0-9-]", "-", node.lower()).strip("-")[:20].strip("-")
    assert readable in name
    assert job_name(node, RUN) == name  # a rerun of the same run finds the same Job


@pytest.mark.parametrize("node", ["worker-1", LONG_A, VERY_LONG])
@pytest.mark.parametrize("run_id", [RUN, PREFECT_RUN, "x" * 80])
def test_labels_are_valid_and_annotations_hold_the_full_node_and_run(
    node: str, run_id: str
) -> None:
    job = manifest(node, run_id)
    meta = job["metadata"]
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    for value in [*meta["labels"].values(), *pod_labels.values()]:
        assert len(value) <= 63 and LABEL_VALUE.match(value), value
    assert meta["annotations"]["kube-runbooks.io/node-name"] == node
    assert meta["annotations"]["kube-runbooks.io/run-id"] == run_id
    assert job["spec"]["template"]["spec"]["nodeName"] == node
    assert job["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "NODE_NAME", "value": node}
    ]


@pytest.mark.parametrize(
    "image",
    [
        "registry.example:5000/tools/patcher:1.2 # comment",
        "busybox: 1.36",
        "busybox:1.36\n          securityContext: {privileged: false}\n        - name: x",
        'busybox"}, "hostNetwork": true, "x": {"',
        "busybox:1.36\nmetadata: {name: evil}",
        "{{ image }}",
        "",
    ],
)
def test_job_image_ends_up_verbatim_and_adds_no_keys(image: str) -> None:
    job = manifest(image=image)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == image
    assert set(job) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(pod) == {
        "nodeName",
        "restartPolicy",
        "hostPID",
        "tolerations",
        "containers",
    }
    assert set(container) == {"name", "image", "command", "env", "securityContext"}
    assert job["metadata"]["name"] == job_name("worker-1", RUN)


def test_command_with_yaml_and_json_characters_is_kept_as_argv() -> None:
    argv = ["sh", "-c", 'echo "a: b" # c; {{x}} ]', "--flag=x: y"]
    job = render_job("worker-1", RUN, "ns", "busybox", argv, 0.2)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == argv
    assert job["spec"]["activeDeadlineSeconds"] == 1
