"""Max-unavailable as operators write it ("3" or "25%"), resolved against a pool's size."""

from __future__ import annotations

import math
import re

_COUNT = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


def validate_max_unavailable(value: str | int) -> str:
    """Normalise a count or percentage; 0, 0% and over 100% are refused with a reason."""
    match = _COUNT.match(str(value))
    if not match:
        raise ValueError(
            f"max-unavailable {value!r} is neither a count (e.g. 2) nor a percentage (e.g. 25%)"
        )
    number, percent = int(match.group(1)), bool(match.group(2))
    if number < 1:
        raise ValueError(f"max-unavailable must be at least 1 node or 1% (got {value})")
    if percent and number > 100:
        raise ValueError(f"max-unavailable {value} is more than 100% of the nodes")
    return f"{number}%" if percent else str(number)


def resolve_max_unavailable(value: str, pool_size: int) -> int:
    """How many nodes of a pool of ``pool_size`` may be out at once: a percentage rounds down,
    but never below one node (a rollout that can never start is not what anyone asked for)."""
    normalised = validate_max_unavailable(value)
    if normalised.endswith("%"):
        return max(1, math.floor(pool_size * int(normalised[:-1]) / 100))
    return int(normalised)
