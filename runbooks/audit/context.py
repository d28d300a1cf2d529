"""The audit context of the code running now (runbook, actor, flow run), held in a contextvar
so records made deep inside tasks still say who is acting, without threading it through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from runbooks.audit.models import AuditContext

_current: ContextVar[AuditContext | None] = ContextVar("runbook_audit_context", default=None)


def current_context() -> AuditContext | None:
    return _current.get()


@contextmanager
def using_context(context: AuditContext) -> Iterator[AuditContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
