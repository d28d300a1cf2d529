"""When a Velero Schedule fires next: cron as Velero reads it (robfig/cron's standard parser)."""

from __future__ import annotations

import datetime as dt

import pytest

from runbooks.backups.next_backup import BadCron, next_backup

NOW = dt.datetime(2026, 12, 2, 13, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("expression", "last", "expected"),
    [
        ("0 2 * * *", None, dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)),
        ("*/15 * * * *", None, dt.datetime(2026, 12, 2, 13, 15, tzinfo=dt.UTC)),
        ("@daily", None, dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.UTC)),
        ("@every 6h", NOW - dt.timedelta(hours=7), dt.datetime(2026, 12, 2, 18, 0, tzinfo=dt.UTC)),
        ("@every 1h30m", None, dt.datetime(2026, 12, 2, 14, 30, tzinfo=dt.UTC)),
        # 02:00 in Berlin (UTC+1 in December) is 01:00 UTC
        ("CRON_TZ=Europe/Berlin 0 2 * * *", None, dt.datetime(2026, 12, 3, 1, 0, tzinfo=dt.UTC)),
    ],
)
def test_next_backup_is_when_velero_would_fire(expression, last, expected):
    assert next_backup(expression, NOW, last) == expected


@pytest.mark.parametrize(
    "expression",
    ["", "0 2 * *", "every day", "0 0 2 * * *", "@every soon", "CRON_TZ=Mars/Base 0 2 * * *"],
)
def test_an_expression_velero_would_refuse_is_named(expression):
    with pytest.raises(BadCron):
        next_backup(expression, NOW)
