"""One duration type: a window length reads like every other duration an operator types."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import TypeAdapter

from runbooks.kit.durations import Duration, format_duration
from runbooks.window import MaintenanceWindow

DURATION = TypeAdapter(Duration)


@pytest.mark.parametrize(
    ("text", "minutes"), [("1.5h", 90), ("1h 30m", 90), ("90m", 90), ("1d2h", 1560)]
)
def test_a_window_length_reads_like_a_runbook_duration(text: str, minutes: int):
    window = MaintenanceWindow(cron="0 2 * * 6", length=text)
    assert window.length == timedelta(minutes=minutes) == DURATION.validate_python(text)


def test_a_window_length_is_shown_in_days_and_hours_other_durations_in_hours():
    assert format_duration(timedelta(hours=26), days=True) == "1d2h"
    assert format_duration(timedelta(hours=26)) == "26h"  # an RPO "older than 26h"
    assert "for 1d2h" in str(MaintenanceWindow(cron="0 2 * * 6", length="26h"))
