"""Durations as operators write them ("15m", "1h30m", "90s", "90"): the one duration type of
every runbook's parameters (timeouts, RPOs, leases, approval limits, window lengths), parsed once
at the boundary so the rest of the engine sees timedeltas, and written back the way they are
typed (the Prefect UI form shows "15m", not "PT15M")."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}

# Nothing the engine waits for (a drain, an action, a lease, a blocker) is sensibly longer than
# a year; a bound keeps every timer downstream in range (socket timeouts, the Lease's int32
# seconds) instead of failing mid-run on a typo such as 99999999999999d.
MAX_DURATION = timedelta(days=365)


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """``"15m"``, ``"1h30m"``, ``"45s"``, ``"90"`` (seconds) -> timedelta; ValueError otherwise."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        raw = re.sub(r"\s+", "", text).lower()  # "1h 30m" as "1h30m"
        if re.fullmatch(r"\d+(?:\.\d+)?", raw):
            seconds = float(raw)
        elif raw and _PART.sub("", raw) == "":
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(raw))
        else:
            raise ValueError(
                f"cannot read duration {text!r}: use e.g. 90s, 15m, 1h30m or a number of seconds"
            )
    if seconds < 0:
        raise ValueError(f"duration {text!r} is negative")
    if seconds > MAX_DURATION.total_seconds():  # also before timedelta overflows
        raise _too_long(text)
    return timedelta(seconds=seconds)


def _too_long(text: object) -> ValueError:
    return ValueError(f"duration {text!s} is too long: at most {MAX_DURATION.days}d")


def _within_limit(value: timedelta) -> timedelta:
    """The same bound for ISO 8601 values, which pydantic reads itself."""
    if value > MAX_DURATION:
        raise _too_long(_write_duration(value))
    if value < timedelta(0):
        raise ValueError(f"duration {_write_duration(value)} is negative")
    return value


def format_duration(value: timedelta | float, *, days: bool = False) -> str:
    """``timedelta(seconds=5400)`` -> ``"1h30m"``; sub-minute values keep one decimal. With
    ``days``, whole days are counted as such (a window of ``1d2h``, not ``26h``)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds % 1 else f"{int(seconds)}s"
    whole = round(seconds)
    day_count, whole = divmod(whole, 86400) if days else (0, whole)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{day_count}d" if day_count else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts)


def _read_duration(value: object) -> object:
    """Operators' forms ("15m", "90", 90); ISO 8601 ("PT15M") is left to pydantic."""
    if isinstance(value, str) and value.strip().upper().startswith("P"):
        return value.strip()
    if isinstance(value, str | int | float):
        return parse_duration(value)
    return value


def _write_duration(value: timedelta) -> str:
    """Exact, and in the form it is typed: the Prefect UI form shows "15m", not "PT15M"."""
    seconds = value.total_seconds()
    return format_duration(value) if seconds.is_integer() else f"{seconds:g}s"


# A duration parameter as forms and JSON carry it. The pattern lets the Prefect UI refuse a
# typo before the run is created; ISO 8601 stays accepted for API callers who send it.
Duration = Annotated[
    timedelta,
    BeforeValidator(_read_duration),
    AfterValidator(_within_limit),
    PlainSerializer(_write_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*((\d+(\.\d+)?([mM][sS]|[sSmMhHdD]))+|\d+(\.\d+)?|[pP]\S+)\s*$",
            "examples": ["90s", "15m", "1h30m"],
        }
    ),
]
