"""Turn expected failures into one actionable line and an exit code, never a traceback.

Exit codes follow the project's convention: 0 done, 1 the runbook or environment failed,
2 the user's input was wrong (nothing was changed).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class UserError(ValueError):
    """Bad input from the person at the keyboard: reported in one line, exit 2."""


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (a driver's may run to several), or its type."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def exit_code_for(exc: BaseException) -> int:
    """2 for bad input, 1 for the rest. The project's input errors (UserError, the kubeconfig's,
    the audit URL's, an invalid request) are ValueErrors, so a failure class that is also a
    ValueError (e.g. AuditStoreConfigError) is reported as the user's mistake."""
    return EXIT_BAD_INPUT if isinstance(exc, ValueError) else EXIT_FAILED


@contextmanager
def reported_errors(*failures: type[BaseException]) -> Iterator[None]:
    """Report ``UserError`` (exit 2) and the given failures (exit 1, or 2 when one is also a
    ValueError) in one line."""
    try:
        yield
    except UserError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except failures as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        raise typer.Exit(exit_code_for(exc)) from None


# typer vendors click; its UsageError is BadParameter's base (no public name of its own).
_USAGE_ERROR: type[Exception] = typer.BadParameter.__mro__[1]


class OneLineUsageErrors(TyperGroup):
    """Click reports a mistyped option in a boxed block; the project answers in one line, exit 2."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context (private)
        try:
            return super().invoke(ctx)
        except _USAGE_ERROR as exc:
            where = getattr(exc, "ctx", None)
            command = where.command_path if where is not None else "runbook"
            message = exc.format_message()  # type: ignore[attr-defined]
            print(f"error: {command}: {message}", file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT) from None
