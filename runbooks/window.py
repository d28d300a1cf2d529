"""Maintenance windows: when a runbook may start new work on a cluster.

A window is a Prefect cron schedule (cron + IANA time zone) plus a length. It opens when the
schedule fires and closes at the *wall-clock* time ``length`` later, so "Saturday 01:00 for 3h"
always closes at 04:00 local time, also on the nights the clocks change (2 h of real time in
spring, 4 h in autumn): the agreed local end of a window, where business hours start, is what
must not be crossed. Wall times that do not exist or occur twice are resolved the way Prefect's
scheduler resolves them, so a window opens exactly when Prefect starts its run:

- a time in the spring-forward gap moves forward by the gap (02:30 -> 03:30 summer time);
- a time that occurs twice in autumn means its first occurrence (summer time).

Windows may cross midnight ("0 22 * * 5" for 8h closes Saturday 06:00) and may overlap (an
hourly cron for 3h); then a moment is inside if any window holds it, and it closes at the
latest of their closes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The public croniter: the engine Prefect's scheduler vendors, so openings agree with its runs.
from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from runbooks.kit.durations import format_duration, parse_duration

# No time zone moves its clocks by more than this at once; wall-clock searches look this far
# beyond the obvious range so a repeated or skipped hour cannot hide an opening.
_DST_SLACK = timedelta(hours=3)
MAX_LENGTH = timedelta(days=7)


def parse_length(value: Any) -> Any:
    """The kit's durations ("3h", "90m", "1h30m", "1d"); ISO 8601 is left to pydantic."""
    if isinstance(value, str) and not value.strip().upper().startswith("P"):
        try:
            return parse_duration(value)
        except ValueError:
            raise ValueError(f"window length {value!r} is not like 3h, 90m or 1h30m") from None
    return value


def format_length(length: timedelta) -> str:
    """The inverse of ``parse_length``: 3h, 90m -> 1h30m, 1d2h."""
    return format_duration(length, days=True)


WindowLength = Annotated[
    timedelta,
    BeforeValidator(parse_length),
    PlainSerializer(format_length, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*(\d+\s*d)?\s*(\d+\s*h)?\s*(\d+\s*m)?\s*$",
            "examples": ["3h", "90m", "1h30m"],
        }
    ),
]


class MaintenanceWindow(BaseModel):
    """A recurring maintenance window: opens on a cron schedule and stays open for its length."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Maintenance window")

    cron: str = Field(
        description="When the window opens, as a 5-field cron expression in the window's time "
        "zone (e.g. '0 2 * * 6' = Saturdays 02:00).",
        examples=["0 2 * * 6"],
    )
    timezone: str = Field(
        default="UTC",
        description="IANA time zone the cron expression is read in (e.g. Europe/Berlin).",
        examples=["Europe/Berlin"],
    )
    length: WindowLength = Field(
        description="How long the window stays open, in wall-clock time: 3h, 90m, 1h30m. "
        "No new node is started after it closes; the node in hand is finished.",
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        value = " ".join(value.split())
        fields = value.split(" ")
        if len(fields) != 5:
            raise ValueError(
                f"cron {value!r} has {len(fields)} fields; a window needs 5 "
                "(minute hour day-of-month month day-of-week), e.g. '0 2 * * 6'"
            )
        if not croniter.is_valid(value) or any(f.upper() in {"R", "H"} for f in fields):
            raise ValueError(f"cron {value!r} is not a valid cron expression, e.g. '0 2 * * 6'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"time zone {value!r} is not an IANA time zone name, e.g. Europe/Berlin"
            ) from None
        return value

    @field_validator("length")
    @classmethod
    def _sensible_length(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1) or value > MAX_LENGTH:
            raise ValueError(
                f"window length {format_length(value)} must be between 1m and "
                f"{format_length(MAX_LENGTH)}"
            )
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def __str__(self) -> str:
        return f"'{self.cron}' {self.timezone} for {format_length(self.length)}"

    # -- questions a runbook asks --------------------------------------------------------

    def contains(self, t: datetime) -> bool:
        """Is ``t`` inside a window (opening included, closing excluded)?"""
        return self.closes_at(t) is not None

    def closes_at(self, t: datetime) -> datetime | None:
        """When the window holding ``t`` closes (UTC), or None if ``t`` is outside every window.

        With overlapping windows, the latest close of those holding ``t``."""
        span = self._span(t)
        return span[1] if span else None

    def opened_at(self, t: datetime) -> datetime | None:
        """When the window holding ``t`` (the one that closes last) opened, in UTC."""
        span = self._span(t)
        return span[0] if span else None

    def _span(self, t: datetime) -> tuple[datetime, datetime] | None:
        holding = [(o, c) for o, c in self._windows_around(t) if o <= t < c]
        return max(holding, key=lambda span: (span[1], span[0])) if holding else None

    def next_opening(self, t: datetime) -> datetime:
        """The first opening after ``t`` (UTC): "the next window opens at ..."."""
        wall = self._wall(t) - _DST_SLACK
        found: list[tuple[datetime, datetime]] = []
        cron = croniter(self.cron, wall)
        while True:
            opening_wall: datetime = cron.get_next(datetime)
            instant = self._instant(opening_wall)
            if instant > t:
                found.append((opening_wall, instant))
            # Openings are ordered except inside a spring gap; look a little past the first.
            if found and opening_wall > found[0][0] + _DST_SLACK:
                return min(instant for _, instant in found)

    def deadline(self, now: datetime, other: datetime | None = None) -> datetime:
        """After when a run started at ``now`` starts no new node: the window's close, ``now``
        itself when the window is closed (start nothing), or ``other`` if that is earlier."""
        close = self.closes_at(now) or now.astimezone(UTC)
        if other is not None:
            other = other if other.tzinfo else other.replace(tzinfo=UTC)
            close = min(close, other.astimezone(UTC))
        return close

    def describe(self, t: datetime) -> str:
        """One line for a report: open until when, or closed and when it opens next."""
        close = self.closes_at(t)
        if close is not None:
            return f"window {self} is open until {self._local(close)}"
        return f"window {self} is closed; next opens {self._local(self.next_opening(t))}"

    # -- wall-clock arithmetic -----------------------------------------------------------

    def _windows_around(self, t: datetime) -> list[tuple[datetime, datetime]]:
        """(opening, close) in UTC of every window that may hold ``t``."""
        wall = self._wall(t)
        cron = croniter(self.cron, wall + _DST_SLACK)
        oldest_wall = wall - self.length - _DST_SLACK
        windows: list[tuple[datetime, datetime]] = []
        latest_wall: datetime | None = None
        while True:
            opening_wall: datetime = cron.get_prev(datetime)
            if opening_wall < oldest_wall:
                return windows
            # Older windows close no later than newer ones, apart from DST noise within the
            # slack: once well past the newest candidate, none can close later than it.
            if latest_wall is not None and opening_wall < min(wall, latest_wall) - _DST_SLACK:
                return windows
            opening = self._instant(opening_wall)
            if opening <= t:
                windows.append((opening, self._instant(opening_wall + self.length)))
                latest_wall = latest_wall or opening_wall

    def _wall(self, t: datetime) -> datetime:
        if t.tzinfo is None:
            raise ValueError(f"time {t.isoformat()} has no time zone; pass an aware datetime")
        return t.astimezone(self.zone).replace(tzinfo=None)

    def _instant(self, wall: datetime) -> datetime:
        # fold=0 resolves both DST cases like Prefect's scheduler: the first of two repeated
        # times, and a skipped time read with the offset before the jump (i.e. shifted forward).
        return wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def _local(self, t: datetime) -> str:
        return t.astimezone(self.zone).strftime("%a %Y-%m-%d %H:%M %Z")
