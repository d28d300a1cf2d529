"""The audit context of the code running now (runbook, actor, flow run), held in a contextvar
so records made deep inside tasks still say who is acting, without threading it through.

Prefect copies context variables into the threads that run submitted tasks; a plain
``ThreadPoolExecutor`` does not: wrap the function with ``carried(fn)``. As a safety net, when
a thread has no context of its own and exactly one context is open in the process (one run,
fanned out to threads), that one applies; with several open at once there is no safe guess,
and the record falls back to its defaults.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from typing import ParamSpec, TypeVar

from runbooks.audit.models import AuditContext

_current: ContextVar[AuditContext | None] = ContextVar("runbook_audit_context", default=None)
_open: list[AuditContext] = []
_open_lock = threading.Lock()


P = ParamSpec("P")
R = TypeVar("R")


def carried(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run with the caller's audit context, from any thread: for thread pools, e.g.
    ``pool.map(carried(drain_one), nodes)``. Each call gets its own copy of the context."""
    context = _current.get()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        def inner() -> R:
            _current.set(context)
            return fn(*args, **kwargs)

        return copy_context().run(inner)

    return run


def own_context() -> AuditContext | None:
    """The context this code set or was carried into, without the one-open-context guess:
    tells a run's outermost ``audit_context`` from a nested one."""
    return _current.get()


def current_context() -> AuditContext | None:
    context = _current.get()
    if context is not None:
        return context
    with _open_lock:
        distinct = {id(c): c for c in _open}
        return next(iter(distinct.values())) if len(distinct) == 1 else None


@contextmanager
def using_context(context: AuditContext) -> Iterator[AuditContext]:
    token = _current.set(context)
    with _open_lock:
        _open.append(context)
    try:
        yield context
    finally:
        with _open_lock:
            _open.remove(context)
        _current.reset(token)


def actor_from_run_tags(tags: list[str]) -> str | None:
    """Prefect has no users; our triggers tag runs ``actor:<who>`` or ``trigger:<source>``."""
    for tag in tags:
        if tag.startswith("actor:") and len(tag) > len("actor:"):
            return tag.removeprefix("actor:")
    for tag in tags:
        if tag.startswith("trigger:"):
            return tag
    return None
