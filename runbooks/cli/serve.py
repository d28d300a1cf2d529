"""``runbook serve``: everything one machine needs to run the runbooks for a team.

A local Prefect server (unless PREFECT_API_URL names one; its data in
$RUNBOOK_STATE_DIR/prefect unless PREFECT_HOME is set), the deployments from
deployments/prefect.yaml, a worker for the process work pool, and the Slack listener when Slack
is configured. Each runs as a child process in its own process group, its output prefixed with
its name; Ctrl-C or SIGTERM stops them in reverse order, by PID, and waits for each. Runs in
flight are interrupted with the worker (they release their Lease; a rerun finishes their nodes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import IO, Annotated

import typer

from runbooks.cli.errors import UserError, reported_errors
from runbooks.lifetime import stop_with_this_process
from runbooks.settings import get_settings

PREFECT_FILE = Path("deployments") / "prefect.yaml"


def project_root() -> Path:
    """Where the flows and deployments/prefect.yaml are: RUNBOOKS_DIR, else the current
    directory if it is a checkout, else the checkout this module was installed from."""
    if os.environ.get("RUNBOOKS_DIR"):
        return Path(os.environ["RUNBOOKS_DIR"]).resolve()
    if (Path.cwd() / PREFECT_FILE).exists():
        return Path.cwd()
    return Path(__file__).resolve().parents[2]


DEFAULT_POOL = "runbooks-process"
MAX_GRACE = 3600.0  # seconds a part may take to stop; a worker finishing a drain needs minutes


class ServeFailed(RuntimeError):
    """A part of the stack did not come up or died; the message names it."""


class Child:
    """One process we started: its name, its PID, and a thread copying its output."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # our Ctrl-C reaches only us; we stop it in order
            preexec_fn=stop_with_this_process(),  # and if we are killed outright, it stops too
        )
        self.tail: list[str] = []
        self._copier = threading.Thread(target=self._copy, args=(self.process.stdout,), daemon=True)
        self._copier.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _copy(self, stream: IO[str] | None) -> None:
        for line in stream or []:
            self.tail = [*self.tail[-19:], line.rstrip()]
            print(f"[{self.name}] {line.rstrip()}", file=sys.stderr, flush=True)

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self) -> int:
        """Wait for a child that ends by itself (`prefect deploy`), and for its last lines."""
        code = self.process.wait()
        self._copier.join(timeout=5)
        return code

    def stop(self, grace: float) -> str:
        """SIGINT (twice: Prefect workers finish on the second), then SIGTERM, then SIGKILL."""
        for sig, wait in (
            (signal.SIGINT, grace / 2),
            (signal.SIGINT, grace / 4),
            (signal.SIGTERM, grace / 4),
            (signal.SIGKILL, 5.0),
        ):
            if not self.running():
                break
            try:
                os.killpg(self.pid, sig)  # the group we created: the child and its helpers
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        self._copier.join(timeout=2)
        return f"{self.name} (pid {self.pid}) exited {self.process.returncode}"


class Stack:
    """The children of one ``runbook serve``, stopped in reverse order of starting."""

    def __init__(self, env: dict[str, str], root: Path) -> None:
        self.env = env
        self.root = root
        self.children: list[Child] = []
        self.stopping = threading.Event()

    def start(self, name: str, argv: list[str]) -> Child:
        child = Child(name, argv, self.env, self.root)
        self.children.append(child)
        say(f"started {name} (pid {child.pid}): {' '.join(argv[1:])}")
        return child

    def died(self) -> Child | None:
        return next((c for c in self.children if not c.running()), None)

    def stop(self, grace: float) -> None:
        for child in reversed(self.children):
            say(f"stopped {child.stop(grace)}")


def say(message: str) -> None:
    print(f"[serve] {message}", file=sys.stderr, flush=True)


def api_healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_for_api(stack: Stack, api_url: str, server: Child | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not api_healthy(api_url):
        if server is not None and not server.running():
            raise ServeFailed(
                f"the Prefect server exited ({server.process.returncode}) before it answered: "
                + " | ".join(server.tail[-3:])
            )
        if stack.stopping.is_set():
            raise ServeFailed("stopped before the Prefect API answered")
        if time.monotonic() > deadline:
            where = "the local server" if server else "PREFECT_API_URL"
            raise ServeFailed(
                f"the Prefect API at {api_url} ({where}) did not answer in {timeout:.0f}s"
            )
        time.sleep(0.5)


def local_server_home(env: dict[str, str], state_dir: Path) -> dict[str, str]:
    """The environment for a server we start: its database (runs, logs, artifacts) under the
    engine's state dir rather than ~/.prefect, unless PREFECT_HOME says where."""
    if env.get("PREFECT_HOME"):
        return env
    return {**env, "PREFECT_HOME": str(state_dir / "prefect")}


def register_deployments(stack: Stack, prefect: list[str]) -> None:
    """``prefect deploy --all``: the same command an operator runs, so both see the same errors."""
    deploy = stack.start(
        "deploy",
        [
            *prefect,
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            str(stack.root / PREFECT_FILE),
        ],
    )
    code = deploy.wait()
    stack.children.remove(deploy)
    if code != 0:
        raise ServeFailed(f"`prefect deploy --all` failed ({code}): {' | '.join(deploy.tail[-3:])}")


def ensure_work_pool(api_url: str, pool: str) -> None:
    """The process pool the deployments name; `prefect deploy` refuses a missing one."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            say(f"created work pool {pool} (type process)")
        except ObjectAlreadyExists:
            pass


def listener_available(api_url: str, http: bool) -> str | None:
    """Why the listener cannot start, or None if it can: it needs its command and Slack."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from runbooks.cli.main import app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    if "listen" not in names:
        return "`runbook listen` is not part of this version"
    from runbooks.approvals.config import SlackNotConfigured, load_slack_settings, require

    # The listener's own check: environment first, then Prefect Secret blocks on our server.
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url
    try:
        with temporary_settings({PREFECT_API_URL: api_url}):
            require(load_slack_settings(), "bot_token", "signing_secret" if http else "app_token")
    except SlackNotConfigured as exc:
        return str(exc)
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
    return None


def serve(
    port: Annotated[
        int, typer.Option(help="Port of the local Prefect server (UI and API), on 127.0.0.1.")
    ] = 4200,
    pool: Annotated[str, typer.Option(help="Process work pool the worker polls.")] = DEFAULT_POOL,
    deploy: Annotated[
        bool,
        typer.Option(help="Register the deployments in deployments/prefect.yaml first."),
    ] = True,
    listener: Annotated[
        bool, typer.Option(help="Start `runbook listen` for Slack approvals, if configured.")
    ] = True,
    listen_http: Annotated[
        str | None,
        typer.Option(
            "--listen-http",
            metavar="HOST:PORT",
            help="Pass --http HOST:PORT to the listener instead of Socket Mode.",
        ),
    ] = None,
    grace: Annotated[
        float, typer.Option(help="Seconds each part gets to stop before it is killed.")
    ] = 20.0,
) -> None:
    """Run a Prefect server (unless PREFECT_API_URL is set), a worker and the Slack listener."""
    from prefect.settings import get_current_settings

    with reported_errors(ServeFailed):
        if not 1 <= port <= 65535:
            raise UserError(f"--port {port} is not a TCP port (1-65535)")
        if not 0 < grace <= MAX_GRACE:  # also refuses nan; before anything is started
            raise UserError(f"--grace {grace}: give seconds, more than 0 and at most {MAX_GRACE}")
        if listen_http is not None:
            from runbooks.cli.listen import _address

            _address(listen_http, "--listen-http")  # the listener's own check, said now
        root = project_root()
        if deploy and not (root / PREFECT_FILE).exists():
            raise UserError(
                f"no {root / PREFECT_FILE} to deploy from: run from the checkout, set "
                "RUNBOOKS_DIR, or use --no-deploy"
            )
        configured = get_current_settings().api.url
        api_url = configured or f"http://127.0.0.1:{port}/api"
        env = {**os.environ, "PREFECT_API_URL": api_url, "RUNBOOKS_DIR": str(root)}
        if not configured:
            env = local_server_home(env, get_settings().state_dir)
        prefect = [sys.executable, "-m", "prefect"]
        stack = Stack(env, root)

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            say(f"{signal.Signals(signum).name}: stopping")
            stack.stopping.set()

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            server = None
            if configured:
                say(f"using the Prefect server at {api_url} (PREFECT_API_URL)")
            else:
                home = Path(env["PREFECT_HOME"]).expanduser()
                home.mkdir(parents=True, exist_ok=True)  # the server does not create it
                say(f"Prefect server data in {home} (PREFECT_HOME)")
                server = stack.start(
                    "server",
                    [*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                )
            # A configured server should be up already; a local one may migrate its database.
            wait_for_api(stack, api_url, server, timeout=120 if server else 15)
            ensure_work_pool(api_url, pool)
            if deploy:
                register_deployments(stack, prefect)
            stack.start(
                "worker", [*prefect, "worker", "start", "--pool", pool, "--type", "process"]
            )
            why_not = (
                listener_available(api_url, bool(listen_http)) if listener else "--no-listener"
            )
            if why_not is None:
                http = ["--http", listen_http] if listen_http else []
                stack.start(
                    "listener", [sys.executable, "-m", "runbooks.cli.main", "listen", *http]
                )
            else:
                say(f"listener not started: {why_not}")
            ui = api_url.removesuffix("/api")
            say(f"ready: UI {ui}  (export PREFECT_API_URL={api_url} for the prefect CLI)")
            while not stack.stopping.wait(timeout=1):
                dead = stack.died()
                if dead is not None:
                    raise ServeFailed(
                        f"{dead.name} (pid {dead.pid}) exited {dead.process.returncode}: "
                        + " | ".join(dead.tail[-3:])
                    )
        finally:
            stack.stop(grace)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
