"""When a Velero Schedule's next backup is due, from its cron expression.

Velero reads schedules with robfig/cron's standard parser: five fields, the ``@daily`` family,
``@every <Go duration>``, and an optional ``CRON_TZ=<zone>`` (or ``TZ=``) prefix; times are UTC
unless a zone is given. Parsed with the public croniter package.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from runbooks.backups.facts import go_duration


class BadCron(ValueError):
    """A Schedule's expression Velero would refuse (or that this check cannot read)."""


def next_backup(
    expression: str, now: dt.datetime, last_backup: dt.datetime | None = None
) -> dt.datetime:
    """The first time after ``now`` the schedule fires (``@every``: after its last backup)."""
    text = expression.strip()
    zone: dt.tzinfo = dt.UTC
    if text.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, text = text.partition(" ")
        try:
            zone = ZoneInfo(prefix.split("=", 1)[1])
        except (ZoneInfoNotFoundError, ValueError):
            raise BadCron(f"unknown time zone in {expression!r}") from None
        text = text.strip()
    if text.startswith("@every"):
        every = go_duration(text.removeprefix("@every").strip())
        if not every:
            raise BadCron(f"cannot read the interval of {expression!r}")
        start = last_backup or now
        due = start + every
        while due <= now:
            due += every
        return due
    if not croniter.is_valid(text) or len(text.split()) not in (1, 5):
        raise BadCron(f"{expression!r} is not a five-field cron expression")
    local_now = now.astimezone(zone)
    fires: dt.datetime = croniter(text, local_now).get_next(dt.datetime)
    return fires.astimezone(dt.UTC)
