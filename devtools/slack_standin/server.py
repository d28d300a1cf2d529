"""The Slack Web API stand-in: keeps messages, threads, updates, users and user groups.

Only the methods the runbooks use; anything else answers ``unknown_method`` so a gap fails
loudly. Faults (``ok: false`` errors, HTTP 429 with Retry-After, 5xx, latency) are injected
per method with :meth:`SlackStandin.inject`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TEAM_ID = "T0STANDIN"
APP_ID = "A0STANDIN"
BOT_USER = "U0BOT"

Handler = Callable[["SlackStandin", dict[str, Any]], dict[str, Any]]


@dataclass
class Fault:
    method: str
    times: int
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float
    answered: int


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    reply_broadcast: bool = False
    edits: int = 0
    metadata: dict[str, Any] | None = None


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str


@dataclass
class SlackStandin:
    """Start with :meth:`start` (or as a context manager); ``api_url`` is the base_url to use."""

    bot_token: str = "xoxb-standin-bot"
    app_token: str = "xapp-standin-app"
    channels: set[str] = field(default_factory=lambda: {"C0OPS"})
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    socket_url: str | None = None

    def __post_init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # --- setup -------------------------------------------------------------------------
    def add_user(
        self, user_id: str, name: str | None = None, *, team_id: str = TEAM_ID, **flags: bool
    ) -> None:
        """A workspace member; flags: deleted, is_bot, is_restricted, is_ultra_restricted."""
        self.users[user_id] = {
            "id": user_id,
            "team_id": team_id,
            "name": name or user_id.lower(),
            "deleted": flags.get("deleted", False),
            "is_bot": flags.get("is_bot", False),
            "is_restricted": flags.get("is_restricted", False),
            "is_ultra_restricted": flags.get("is_ultra_restricted", False),
        }

    def add_usergroup(self, group_id: str, members: list[str]) -> None:
        for member in members:
            if member not in self.users:
                self.add_user(member)
        self.usergroups[group_id] = list(members)

    def inject(
        self,
        method: str,
        *,
        times: int = 1,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (or be slow), as Slack would."""
        with self._lock:
            self._faults.append(Fault(method, times, status, error, retry_after, delay))

    # --- queries for tests -------------------------------------------------------------
    def top_level(self, channel: str | None = None) -> list[Message]:
        return [m for m in self.messages if m.thread_ts is None and channel in (None, m.channel)]

    def thread(self, channel: str, ts: str) -> list[Message]:
        return [m for m in self.messages if m.channel == channel and m.thread_ts == ts]

    def find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        assert self._server is not None, "stand-in not started"
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}/api/"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> SlackStandin:
        standin = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin._serve(self)

            def do_POST(self) -> None:
                standin._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SlackStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP --------------------------------------------------------------------------
    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        method = url.path.rsplit("/", 1)[-1]
        args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if body:
            if "json" in (request.headers.get("Content-Type") or ""):
                args.update(json.loads(body))
            else:
                args.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        token = token or str(args.pop("token", ""))

        status, headers, answer = self._answer(method, token, args)
        with self._lock:
            self.calls.append(Call(method, _redacted(args), time.time(), status))
        payload = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)

    def _answer(
        self, method: str, token: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        fault = self._take_fault(method)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status == 429:
                retry = str(fault.retry_after if fault.retry_after is not None else 1)
                return 429, {"Retry-After": retry}, {"ok": False, "error": "ratelimited"}
            if fault.status != 200:
                return fault.status, {}, {"ok": False, "error": "internal_error"}
            if fault.error:
                return 200, {}, {"ok": False, "error": fault.error}
        handler = _METHODS.get(method)
        if handler is None:
            return 404, {}, {"ok": False, "error": "unknown_method"}
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        with self._lock:
            return 200, {}, handler(self, args)

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"


def _redacted(args: dict[str, Any]) -> dict[str, Any]:
    return {k: ("<redacted>" if "token" in k else v) for k, v in args.items()}


def _blocks(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return list(json.loads(value))
    return list(value or [])


def _auth_test(s: SlackStandin, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "team_id": TEAM_ID,
        "team": "Stand-in",
        "user_id": BOT_USER,
        "user": "runbooks",
        "bot_id": "B0BOT",
        "app_id": APP_ID,
        "url": "http://standin.local/",
    }


def _post_message(s: SlackStandin, args: dict[str, Any]) -> dict[str, Any]:
    channel = args.get("channel")
    if channel not in s.channels:
        return {"ok": False, "error": "channel_not_found"}
    thread_ts = args.get("thread_ts")
    if thread_ts and s.find(channel, thread_ts) is None:
        return {"ok": False, "error": "thread_not_found"}
    if not args.get("text") and not args.get("blocks"):
        return {"ok": False, "error": "no_text"}
    message = Message(
        channel=channel,
        ts=s._next_ts(),
        text=str(args.get("text") or ""),
        blocks=_blocks(args.get("blocks")),
        thread_ts=thread_ts,
        reply_broadcast=str(args.get("reply_broadcast")).lower() == "true",
        metadata=args.get("metadata"),
    )
    s.messages.append(message)
    return {"ok": True, "channel": channel, "ts": message.ts, "message": {"ts": message.ts}}


def _update(s: SlackStandin, args: dict[str, Any]) -> dict[str, Any]:
    message = s.find(str(args.get("channel")), str(args.get("ts")))
    if message is None:
        return {"ok": False, "error": "message_not_found"}
    message.text = str(args.get("text") or message.text)
    if "blocks" in args:
        message.blocks = _blocks(args["blocks"])
    message.edits += 1
    return {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text}


def _post_ephemeral(s: SlackStandin, args: dict[str, Any]) -> dict[str, Any]:
    channel, user = str(args.get("channel")), str(args.get("user"))
    if channel not in s.channels:
        return {"ok": False, "error": "channel_not_found"}
    if user not in s.users:
        return {"ok": False, "error": "user_not_in_channel"}
    s.ephemerals.append(Ephemeral(channel, user, str(args.get("text") or "")))
    return {"ok": True, "message_ts": s._next_ts()}


def _usergroup_users(s: SlackStandin, args: dict[str, Any]) -> dict[str, Any]:
    group = args.get("usergroup")
    if group not in s.usergroups:
        return {"ok": False, "error": "no_such_subteam"}
    members = s.usergroups[group]
    if str(args.get("include_disabled", "false")).lower() not in ("true", "1"):
        members = [m for m in members if not s.users.get(m, {}).get("deleted")]
    return {"ok": True, "users": members}


def _users_info(s: SlackStandin, args: dict[str, Any]) -> dict[str, Any]:
    user = s.users.get(str(args.get("user")))
    if user is None:
        return {"ok": False, "error": "user_not_found"}
    return {"ok": True, "user": user}


def _connections_open(s: SlackStandin, args: dict[str, Any]) -> dict[str, Any]:
    if s.socket_url is None:
        return {"ok": False, "error": "socket_mode_not_enabled"}
    return {"ok": True, "url": s.socket_url}


def _replies(s: SlackStandin, args: dict[str, Any]) -> dict[str, Any]:
    channel, ts = str(args.get("channel")), str(args.get("ts"))
    parent = s.find(channel, ts)
    if parent is None:
        return {"ok": False, "error": "thread_not_found"}
    thread = [parent, *s.thread(channel, ts)]
    return {"ok": True, "messages": [{"ts": m.ts, "text": m.text} for m in thread]}


_METHODS: dict[str, Handler] = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "chat.postEphemeral": _post_ephemeral,
    "conversations.replies": _replies,
    "usergroups.users.list": _usergroup_users,
    "users.info": _users_info,
    "apps.connections.open": _connections_open,
}
