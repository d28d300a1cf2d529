"""A kubeconfig that is not one, and an API server that does not answer: one line each, fast,
never a traceback (issue 10, item 9). Real files and real sockets on 127.0.0.1, no mocks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runbooks.kube_target import KubeTarget

RUNBOOK = str(Path(sys.executable).with_name("runbook"))


def kubeconfig(tmp_path: Path, server: str, name: str = "kubeconfig") -> Path:
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("clusters: [\n", "is not valid YAML: line 2, column 1"),
        ("just some text\n", "is not a kubeconfig (found a str); a kubeconfig is a YAML mapping"),
        ("- a\n- b\n", "is not a kubeconfig (found a list)"),
        (b"\x7fELF\x02\x01\x01\x00\xff\xfe", "is not a text file"),
        ("", "file is empty"),
        ("clusters: 5\ncontexts: x\n", "is not a valid kubeconfig"),
        ("apiVersion: v1\nkind: Config\n", "cannot use kubeconfig"),
    ],
)
def test_a_file_that_is_not_a_kubeconfig_is_named_in_one_line(tmp_path, content, message):
    from tasks.kube.client import KubeConfigError, api_client

    path = tmp_path / "config"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)

    with pytest.raises(KubeConfigError) as raised:
        api_client(KubeTarget(kubeconfig=path))

    text = str(raised.value)
    assert message in text and str(path) in text
    assert len(text.splitlines()) == 1


@pytest.mark.parametrize(
    ("where", "message"),
    [("missing", "does not exist"), ("directory", "is a directory, not a file")],
)
def test_a_kubeconfig_path_that_is_no_file_is_named(tmp_path, where, message):
    from tasks.kube.client import KubeConfigError, api_client

    path = tmp_path / "nothing-here" if where == "missing" else tmp_path

    with pytest.raises(KubeConfigError, match=message):
        api_client(KubeTarget(kubeconfig=path))


def test_an_unknown_context_is_named(tmp_path):
    from tasks.kube.client import KubeConfigError, api_client

    path = kubeconfig(tmp_path, "https://127.0.0.1:1")

    with pytest.raises(KubeConfigError, match="context nosuch"):
        api_client(KubeTarget(kubeconfig=path, context="nosuch"))


def test_no_kubeconfig_anywhere_says_what_to_give(tmp_path, monkeypatch):
    from tasks.kube import client as kube

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
    kube._api_client.cache_clear()
    try:
        with pytest.raises(kube.KubeConfigError) as raised:
            kube.api_client(KubeTarget())
    finally:
        kube._api_client.cache_clear()

    assert str(raised.value) == (
        "no kubeconfig: give --kubeconfig or set KUBECONFIG (~/.kube/config does not exist, "
        "and this is not a pod with a service account)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung API server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_a_refused_connection_is_one_line_at_once(tmp_path):
    from tasks.kube import client as kube

    port = free_port()  # nothing listens there any more
    target = KubeTarget(kubeconfig=kubeconfig(tmp_path, f"https://127.0.0.1:{port}"))
    started = time.monotonic()

    with pytest.raises(kube.KubeUnreachable) as raised:
        kube.core(target).list_node()

    assert time.monotonic() - started < 2
    text = str(raised.value)
    assert text == (
        f"cannot reach the Kubernetes API at https://127.0.0.1:{port} "
        f"(kubeconfig {target.kubeconfig}, context (current)): Connection refused; "
        "nothing was changed"
    )


def test_a_server_that_never_answers_is_given_up_after_the_connect_timeout(
    tmp_path, silent_port, monkeypatch
):
    from tasks.kube import client as kube

    monkeypatch.setattr(kube, "CONNECT_SECONDS", 1.0)  # 5 s in use; the unit suite stays fast
    target = KubeTarget(kubeconfig=kubeconfig(tmp_path, f"https://127.0.0.1:{silent_port}"))
    started = time.monotonic()

    with pytest.raises(kube.KubeUnreachable, match="nothing was answered in time"):
        kube.core(target).list_node()

    assert time.monotonic() - started < 1.0 * 2  # one attempt of 1 s, no retries


class _Nodes(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"kind": "NodeList", "apiVersion": "v1", "items": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_after_the_api_has_answered_a_lost_connection_stays_retryable(tmp_path):
    """Mid-run (an API server restart), the callers' retries with backoff must still see a
    network error they retry, not the one-line 'unreachable' that ends a run at its start."""
    from tasks.kube import client as kube
    from tasks.kube.retry import is_transient

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Nodes)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    port = server.server_address[1]
    target = KubeTarget(kubeconfig=kubeconfig(tmp_path, f"http://127.0.0.1:{port}"))
    try:
        assert kube.core(target).list_node().items == []
    finally:
        server.shutdown()
        server.server_close()
        serving.join(timeout=5)

    with pytest.raises(kube.KubeConnectionLost) as raised:
        kube.core(target).list_node()

    assert is_transient(raised.value)  # tasks/kube/retry.py retries it with backoff
    assert str(raised.value) == (
        f"lost the connection to the Kubernetes API at http://127.0.0.1:{port}: Connection refused"
    )


@pytest.mark.slow
def test_runbook_maintain_against_an_unreachable_api_exits_1_in_one_line(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        "RUNBOOK_STATE_DIR": str(tmp_path / "state"),
    }
    path = kubeconfig(tmp_path, f"https://127.0.0.1:{port}")
    started = time.monotonic()

    done = subprocess.run(
        [RUNBOOK, "maintain", "worker-1", "--kubeconfig", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: cannot reach the Kubernetes API at https://127.0.0.1:{port} (kubeconfig "
        f"{path}, context (current)): Connection refused; nothing was changed"
    ]
    assert elapsed < 20, elapsed  # interpreter and imports included; 157 lines before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (None, 1, "Connection refused; nothing was changed"),
        ("clusters: [\n", 2, "is not valid YAML: line 2, column 1"),
    ],
)
def test_with_a_prefect_server_the_same_failures_are_one_line_before_any_run(
    tmp_path, prefect_server, content, code, message
):
    """A Prefect run logs a task's exception with its traceback; these are said before one
    is created."""
    path = kubeconfig(tmp_path, f"https://127.0.0.1:{free_port()}")
    if content is not None:
        path.write_text(content)
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "RUNBOOK_STATE_DIR": str(tmp_path / "state"),
    }

    done = subprocess.run(
        [RUNBOOK, "maintain", "worker-1", "--kubeconfig", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
