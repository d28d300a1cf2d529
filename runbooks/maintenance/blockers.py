"""Should the next batch wait? Firing alerts matching a filter, or pods matching a selector.

Like kured's blockers, each check names itself and says *what* blocks, so the log reads
"blocked by alert NodeFilesystemAlmostFull{instance=worker-3}" and not just "blocked".
Checks fail closed: a blocker that cannot be asked counts as blocking.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*\"?(.*?)\"?\s*$")


class AlertMatcher(BaseModel):
    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


def parse_alert_filter(text: str) -> list[AlertMatcher]:
    """``'severity=critical, alertname=~Node.*'`` -> matchers; ValueError names the bad part."""
    matchers = []
    for part in [p for p in text.split(",") if p.strip()]:
        m = _MATCHER.match(part)
        if not m:
            raise ValueError(
                f"cannot read alert matcher {part.strip()!r}: use label=value, label!=value, "
                "label=~regex or label!~regex"
            )
        if m.group(2) in ("=~", "!~"):
            try:
                re.compile(m.group(3))
            except re.error as exc:
                raise ValueError(f"bad regex in alert matcher {part.strip()!r}: {exc}") from None
        matchers.append(AlertMatcher(label=m.group(1), op=m.group(2), value=m.group(3)))
    return matchers


class Alert(BaseModel):
    labels: dict[str, str] = Field(default_factory=dict)
    state: str = "firing"  # Prometheus: firing|pending; Alertmanager: active|suppressed

    def describe(self) -> str:
        name = self.labels.get("alertname", "(unnamed)")
        rest = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k != "alertname")
        return f"{name}{{{rest}}}" if rest else name


def blocking_alerts(
    alerts: list[Alert], matchers: list[AlertMatcher], ignore: list[str]
) -> list[Alert]:
    """Firing/active alerts that match every matcher and are not ignored by name."""
    return [
        a
        for a in alerts
        if a.state in ("firing", "active")
        and a.labels.get("alertname") not in ignore
        and all(m.matches(a.labels) for m in matchers)
    ]


class BlockerCheck(BaseModel):
    """One blocker's answer; ``reasons`` empty means it does not block."""

    name: str
    reasons: list[str] = Field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return bool(self.reasons)

    def describe(self) -> str:
        shown = ", ".join(self.reasons[:5])
        more = f" and {len(self.reasons) - 5} more" if len(self.reasons) > 5 else ""
        return f"{self.name}: {shown}{more}"
