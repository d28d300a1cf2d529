"""Where durations and max-unavailable lived before the kit: kept only so modules written
against this path keep importing. New code imports ``runbooks.kit.durations`` (the one duration
type) and ``runbooks.maintenance.max_unavailable``."""

from runbooks.kit.durations import MAX_DURATION, Duration, format_duration, parse_duration
from runbooks.maintenance.max_unavailable import resolve_max_unavailable, validate_max_unavailable

__all__ = [
    "MAX_DURATION",
    "Duration",
    "format_duration",
    "parse_duration",
    "resolve_max_unavailable",
    "validate_max_unavailable",
]
