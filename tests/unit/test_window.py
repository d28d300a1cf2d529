"""Maintenance windows: open on the schedule, close at the agreed local time, DST included.

Berlin changes clocks on 2026-03-29 (02:00 CET -> 03:00 CEST) and 2026-10-25 (03:00 CEST ->
02:00 CET); New York on 2026-03-08 and 2026-11-01.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from runbooks.window import MaintenanceWindow

BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def window(cron: str, length: str, timezone: str = "Europe/Berlin") -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"cron": cron, "timezone": timezone, "length": length})


# -- ordinary nights -----------------------------------------------------------------------


def test_window_is_open_from_its_opening_until_just_before_its_close() -> None:
    w = window("0 2 * * 6", "3h")  # Saturdays 02:00-05:00 Berlin (CET = UTC+1 in November)
    assert not w.contains(utc(2026, 11, 28, 0, 59))
    assert w.contains(utc(2026, 11, 28, 1, 0))
    assert w.closes_at(utc(2026, 11, 28, 3, 59)) == utc(2026, 11, 28, 4, 0)
    assert not w.contains(utc(2026, 11, 28, 4, 0))
    assert w.closes_at(utc(2026, 11, 28, 4, 0)) is None


def test_window_crossing_midnight_holds_the_small_hours_of_the_next_day() -> None:
    w = window("0 22 * * 5", "8h")  # Friday 22:00 -> Saturday 06:00
    saturday_5am = datetime(2026, 11, 28, 5, 0, tzinfo=BERLIN)
    assert w.contains(saturday_5am)
    assert w.closes_at(saturday_5am) == datetime(2026, 11, 28, 6, 0, tzinfo=BERLIN)
    assert w.opened_at(saturday_5am) == datetime(2026, 11, 27, 22, 0, tzinfo=BERLIN)
    assert not w.contains(datetime(2026, 11, 28, 6, 0, tzinfo=BERLIN))
    assert not w.contains(datetime(2026, 11, 27, 21, 59, tzinfo=BERLIN))


def test_closed_window_names_when_the_next_one_opens() -> None:
    w = window("0 2 * * 6", "3h")
    monday = utc(2026, 11, 23, 12, 0)
    assert w.next_opening(monday) == utc(2026, 11, 28, 1, 0)
    assert w.describe(monday) == (
        "window '0 2 * * 6' Europe/Berlin for 3h is closed; next opens Sat 2026-11-28 02:00 CET"
    )
    assert w.describe(utc(2026, 11, 28, 2, 0)) == (
        "window '0 2 * * 6' Europe/Berlin for 3h is open until Sat 2026-11-28 05:00 CET"
    )


def test_run_inside_the_window_stops_starting_nodes_when_it_closes() -> None:
    w = window("0 2 * * 6", "3h")
    start = utc(2026, 11, 28, 1, 10)  # 02:10 Berlin
    assert w.deadline(start) == utc(2026, 11, 28, 4, 0)
    earlier = utc(2026, 11, 28, 3, 0)
    assert w.deadline(start, other=earlier) == earlier  # an explicit deadline still wins
    assert w.deadline(start, other=utc(2026, 11, 29)) == utc(2026, 11, 28, 4, 0)


def test_run_started_after_the_window_closed_starts_nothing() -> None:
    w = window("0 2 * * 6", "3h")
    late = utc(2026, 11, 28, 6, 0)  # the worker picked the run up after the window closed
    assert w.deadline(late) == late


def test_overlapping_windows_close_at_the_latest_close() -> None:
    w = window("0 * * * *", "3h")  # every hour, three hours long: always open
    t = utc(2026, 11, 28, 10, 30)
    assert w.contains(t)
    assert w.closes_at(t) == utc(2026, 11, 28, 13, 0)


# -- spring forward -----------------------------------------------------------------------


def test_spring_forward_window_closes_at_the_agreed_local_time_so_it_is_an_hour_shorter() -> None:
    w = window("0 1 * * *", "3h")  # 01:00-04:00 Berlin
    during = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    opened, closes = w.opened_at(during), w.closes_at(during)
    assert opened == utc(2026, 3, 29, 0, 0)  # 01:00 CET
    assert closes == utc(2026, 3, 29, 2, 0)  # 04:00 CEST
    assert closes is not None and opened is not None
    assert closes - opened == timedelta(hours=2)
    assert closes.astimezone(BERLIN).strftime("%H:%M %Z") == "04:00 CEST"
    assert not w.contains(datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN))
    # the nights either side are the usual three hours
    for day in (28, 30):
        t = datetime(2026, 3, day, 2, 0, tzinfo=BERLIN)
        assert w.closes_at(t) - w.opened_at(t) == timedelta(hours=3)  # type: ignore[operator]


def test_window_opening_in_the_skipped_hour_opens_when_prefect_starts_the_run() -> None:
    w = window("30 2 * * *", "2h")  # 02:30 does not exist on 2026-03-29 in Berlin
    assert not w.contains(datetime(2026, 3, 29, 3, 29, tzinfo=BERLIN))
    assert w.opened_at(datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)) == datetime(
        2026, 3, 29, 3, 30, tzinfo=BERLIN
    )
    assert w.closes_at(datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)) == datetime(
        2026, 3, 29, 4, 30, tzinfo=BERLIN
    )


def test_window_closing_in_the_skipped_hour_closes_as_far_after_as_prefect_would_open() -> None:
    w = window("30 0 * * *", "2h")  # closes at "02:30", which does not exist that night
    t = datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN)
    assert w.closes_at(t) == datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)


def test_spring_forward_in_new_york() -> None:
    w = window("0 1 * * 0", "3h", timezone="America/New_York")  # Sunday 01:00-04:00
    t = datetime(2026, 3, 8, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    assert w.opened_at(t) == utc(2026, 3, 8, 6, 0)  # 01:00 EST
    assert w.closes_at(t) == utc(2026, 3, 8, 8, 0)  # 04:00 EDT


# -- fall back ----------------------------------------------------------------------------


def test_fall_back_window_closes_at_the_agreed_local_time_so_it_is_an_hour_longer() -> None:
    w = window("0 1 * * *", "3h")  # 01:00-04:00 Berlin
    during = utc(2026, 10, 25, 1, 30)  # 02:30 CET, the second 02:30 of the night
    opened, closes = w.opened_at(during), w.closes_at(during)
    assert opened == utc(2026, 10, 24, 23, 0)  # 01:00 CEST
    assert closes == utc(2026, 10, 25, 3, 0)  # 04:00 CET
    assert closes is not None and opened is not None
    assert closes - opened == timedelta(hours=4)
    assert closes.astimezone(BERLIN).strftime("%H:%M %Z") == "04:00 CET"


def test_window_opening_at_a_repeated_time_opens_once_at_its_first_occurrence() -> None:
    w = window("30 2 * * *", "1h")  # 02:30 happens twice on 2026-10-25
    first_0230 = utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    second_0230 = utc(2026, 10, 25, 1, 30)  # 02:30 CET
    assert w.opened_at(first_0230) == first_0230
    assert w.opened_at(second_0230) == first_0230  # still the same window, not a new one
    assert w.closes_at(second_0230) == utc(2026, 10, 25, 2, 30)  # 03:30 CET
    assert w.next_opening(first_0230) == utc(2026, 10, 26, 1, 30)  # next day, once


def test_fall_back_in_new_york() -> None:
    w = window("0 0 * * 0", "4h", timezone="America/New_York")  # Sunday 00:00-04:00
    t = utc(2026, 11, 1, 7, 0)  # 02:00 EST, after the clocks went back
    assert w.opened_at(t) == utc(2026, 11, 1, 4, 0)  # 00:00 EDT
    assert w.closes_at(t) == utc(2026, 11, 1, 9, 0)  # 04:00 EST: five real hours


# -- agreement with Prefect's scheduler ----------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "timezone", "start"),
    [
        ("30 2 * * *", "Europe/Berlin", utc(2026, 3, 26)),
        ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 22)),
        ("0 * * * *", "Europe/Berlin", utc(2026, 3, 28, 22)),
        ("0 * * * *", "Europe/Berlin", utc(2026, 10, 24, 22)),
        ("15 1 * * 0", "America/New_York", utc(2026, 3, 1)),
        ("15 1 * * 0", "America/New_York", utc(2026, 10, 25)),
        ("0 2 1-7 * 6", "Australia/Sydney", utc(2026, 3, 20)),
    ],
)
def test_windows_open_exactly_when_prefect_schedules_the_run(
    cron: str, timezone: str, start: datetime
) -> None:
    from prefect.server.schemas.schedules import CronSchedule

    expected = asyncio.run(CronSchedule(cron=cron, timezone=timezone).get_dates(n=12, start=start))
    w = window(cron, "1m", timezone=timezone)
    openings, t = [], start - timedelta(seconds=1)
    for _ in expected:
        t = w.next_opening(t)
        openings.append(t)
        assert w.contains(t)
    assert openings == [d.astimezone(UTC) for d in expected]


# -- input an operator gets wrong ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "0 2 * * 6 *", "length": "3h"}, "has 6 fields; a window needs 5"),
        ({"cron": "0 25 * * 6", "length": "3h"}, "not a valid cron expression"),
        ({"cron": "0 2 * * 6", "length": "3h", "timezone": "Berlin"}, "not an IANA time zone"),
        ({"cron": "0 2 * * 6", "length": "0m"}, "must be between 1m and 7d"),
        ({"cron": "0 2 * * 6", "length": "8d"}, "must be between 1m and 7d"),
        ({"cron": "0 2 * * 6", "length": "three hours"}, "is not like 3h, 90m or 1h30m"),
    ],
)
def test_bad_window_is_refused_with_what_is_allowed(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MaintenanceWindow.model_validate(fields)


def test_naive_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        window("0 2 * * 6", "3h").contains(datetime(2026, 11, 28, 2, 0))


@pytest.mark.parametrize(
    ("text", "minutes"), [("3h", 180), ("90m", 90), ("1h30m", 90), ("1d2h", 1560), ("PT45M", 45)]
)
def test_length_reads_as_operators_write_it_and_round_trips(text: str, minutes: int) -> None:
    w = window("0 2 * * 6", text)
    assert w.length == timedelta(minutes=minutes)
    assert MaintenanceWindow.model_validate(w.model_dump(mode="json")) == w


def test_form_schema_describes_every_field_and_shows_length_examples() -> None:
    schema = MaintenanceWindow.model_json_schema()
    assert all(prop.get("description") for prop in schema["properties"].values())
    assert schema["properties"]["length"]["examples"] == ["3h", "90m", "1h30m"]
    assert schema["required"] == ["cron", "length"]


# -- the runbook's parameters ----------------------------------------------------------------


def test_maintenance_run_given_an_open_window_stops_starting_nodes_at_its_close() -> None:
    from runbooks.maintenance.params import MaintenanceParams

    now = datetime.now(UTC)
    opened = now.replace(second=0, microsecond=0)
    params = MaintenanceParams.model_validate(
        {
            "nodes": ["worker-1"],
            "window": {"cron": f"{opened.minute} {opened.hour} * * *", "length": "2h"},
        }
    )
    assert params.deadline == opened + timedelta(hours=2)


def test_maintenance_run_started_outside_its_window_starts_nothing() -> None:
    from runbooks.maintenance.params import MaintenanceParams

    before = datetime.now(UTC)
    opened = before - timedelta(hours=12)
    params = MaintenanceParams.model_validate(
        {
            "nodes": ["worker-1"],
            "window": {"cron": f"{opened.minute} {opened.hour} * * *", "length": "1h"},
            "deadline": (before + timedelta(hours=1)).isoformat(),
        }
    )
    assert params.deadline is not None
    assert before <= params.deadline <= datetime.now(UTC)
