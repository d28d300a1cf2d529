"""When a Lease expires, by this process's clock only.

Another holder's ``renewTime`` is written by its clock, which may be minutes off ours: read as
a wall-clock time it can make a live holder look expired (and two runs roll the same nodes) or
a dead one look live. As client-go's leader election does (``observedTime``), staleness is the
time since *this process* last saw the Lease's holder record change, measured on its monotonic
clock; the holder's timestamps are compared only for equality, never with our clock.

Our own hold has the mirror rule: a competitor starts counting no earlier than when our last
successful renewal was sent, so we may act until ``sent + duration`` (less a margin for the
request that is about to go out), whatever the renewals since then did.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sighting:
    """A Lease's holder record as this process last saw it, and when (monotonic seconds)
    that record last changed."""

    record: tuple[object, ...]
    duration: float
    changed_at: float

    @property
    def holder(self) -> object:
        return self.record[0] if self.record else None


def holder_record(
    holder: str | None,
    renew_time: object,
    acquire_time: object = None,
    duration: int | None = None,
    transitions: int | None = None,
) -> tuple[object, ...]:
    """What counts as a sign of life: any change of the holder's fields (a renewal moves
    ``renewTime``; a release clears the holder)."""
    return (holder, renew_time, acquire_time, duration, transitions)


def observe(
    previous: Sighting | None, record: tuple[object, ...], duration: float, now: float
) -> Sighting:
    """The sighting after reading ``record`` at ``now``: the clock restarts only when the
    record changed (the first sighting counts as a change: we cannot know how old it is)."""
    if previous is not None and previous.record == record:
        return previous
    return Sighting(record=record, duration=duration, changed_at=now)


def expires_in(sighting: Sighting, now: float) -> float:
    """Seconds until the holder counts as gone if it does not renew (<= 0: gone now)."""
    return sighting.duration - (now - sighting.changed_at)


def safety_margin(duration: float) -> float:
    """How much sooner than a competitor could take over we stop acting: a tenth of the
    duration, at most 2 s (the request in flight, the scheduler of a busy machine)."""
    return min(2.0, duration / 10)


def ours_until(sent_at: float, duration: float) -> float:
    """Until when (monotonic) our hold is safe, given the send time of our last successful
    write of the Lease: a competitor saw that write no earlier than ``sent_at``."""
    return sent_at + duration - safety_margin(duration)
