"""A Lease's expiry by this process's clock: the other holder's renewTime is compared only
for change, never with our clock, so a skewed holder is neither taken over while it renews
nor kept forever once it stops."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from runbooks.maintenance.lease_clock import (
    expires_in,
    holder_record,
    observe,
    ours_until,
    safety_margin,
)
from tasks.kube.retry import LeaseLostSignal

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)  # a holder whose clock is years behind ours


def record(renewed: datetime, holder: str = "other") -> tuple[object, ...]:
    return holder_record(holder, renewed, LONG_AGO, 15, 3)


@pytest.mark.parametrize(
    ("sightings", "now", "left"),
    [
        # (seconds on our clock, the holder's renewTime) per read
        ([(0, LONG_AGO)], 0, 15),  # first sight: the full duration, however old it claims
        ([(0, LONG_AGO)], 14.9, 0.1),
        ([(0, LONG_AGO)], 15, 0),  # unchanged for the duration: gone
        ([(0, LONG_AGO)], 40, -25),
        # renewed every 5 s with renewTimes far in our past: alive
        ([(0, LONG_AGO), (5, LONG_AGO + timedelta(seconds=5))], 19, 1),
        (
            [(t, LONG_AGO + timedelta(seconds=t)) for t in range(0, 60, 5)],
            60,
            10,
        ),
        # renewTimes from the future: alive only while they change
        ([(0, datetime(2099, 1, 1, tzinfo=UTC))], 16, -1),
        # the same renewTime seen again does not restart the clock
        ([(0, LONG_AGO), (10, LONG_AGO)], 15, 0),
    ],
)
def test_staleness_counts_from_when_this_process_saw_the_record_change(sightings, now, left):
    seen = None
    for at, renewed in sightings:
        seen = observe(seen, record(renewed), 15, at)
    assert seen is not None
    assert expires_in(seen, now) == pytest.approx(left)


def test_a_new_holder_restarts_the_clock_even_with_the_same_renew_time():
    seen = observe(None, record(LONG_AGO, "a"), 15, 0)
    seen = observe(seen, record(LONG_AGO, "b"), 15, 14)
    assert expires_in(seen, 20) == pytest.approx(9)


@pytest.mark.parametrize(
    ("sent", "duration", "until"),
    [(100, 60, 158), (100, 15, 113.5), (0, 5, 4.5), (0, 3, 2.7)],
)
def test_our_hold_ends_a_margin_before_a_competitor_could_take_over(sent, duration, until):
    assert ours_until(sent, duration) == pytest.approx(until)
    assert 0 < safety_margin(duration) <= 2


def test_the_lost_signal_sets_itself_when_the_safe_time_runs_out():
    signal = LeaseLostSignal()
    assert signal.reason() is None  # nothing held: nothing lost
    signal.hold(time.monotonic() + 0.2)
    assert not signal.is_set()
    assert signal.wait(5) is True  # wakes at the end of the safe time, not after 5 s
    assert "not renewed in time" in (signal.reason() or "")
    signal.clear()
    assert signal.reason() is None


def test_a_renewal_extends_the_hold_and_a_loss_is_kept_with_its_first_reason():
    signal = LeaseLostSignal()
    signal.hold(time.monotonic() + 0.1)
    signal.renewed(time.monotonic() + 60)
    time.sleep(0.2)
    assert not signal.is_set()
    signal.lose("taken by run B")
    signal.lose("deleted")
    signal.renewed(time.monotonic() + 120)  # a late renewal does not undo a loss
    assert signal.reason() == "taken by run B"
