"""Which alerts block the next batch, and how the blocker says so."""

from __future__ import annotations

import pytest

from runbooks.maintenance.blockers import Alert, BlockerCheck, blocking_alerts, parse_alert_filter

ALERTS = [
    Alert(labels={"alertname": "NodeDiskFull", "severity": "critical", "instance": "w3"}),
    Alert(labels={"alertname": "HighLatency", "severity": "warning"}),
    Alert(labels={"alertname": "Watchdog", "severity": "none"}),
    Alert(labels={"alertname": "NodeDown", "severity": "critical"}, state="pending"),
    Alert(labels={"alertname": "KubeletDown", "severity": "critical"}, state="suppressed"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["NodeDiskFull", "HighLatency"]),
        ("severity=critical", ["NodeDiskFull"]),
        ("severity!=critical", ["HighLatency"]),
        ("alertname=~Node.*", ["NodeDiskFull"]),
        ("alertname!~Node.*, severity=warning", ["HighLatency"]),
        ('severity="critical",instance=w3', ["NodeDiskFull"]),
        ("team=storage", []),
    ],
)
def test_firing_alerts_matching_every_matcher_block(text, expected):
    found = blocking_alerts(ALERTS, parse_alert_filter(text), ignore=["Watchdog"])
    assert [a.labels["alertname"] for a in found] == expected


@pytest.mark.parametrize("text", ["severity", "=critical", "x=~("])
def test_unreadable_filters_are_refused(text):
    with pytest.raises(ValueError):
        parse_alert_filter(text)


def test_a_blocker_names_what_blocks():
    check = BlockerCheck(name="prometheus alerts", reasons=[f"alert A{i}" for i in range(7)])
    assert check.blocking
    assert (
        check.describe()
        == "prometheus alerts: alert A0, alert A1, alert A2, alert A3, alert A4 and 2 more"
    )
    assert ALERTS[0].describe() == "NodeDiskFull{instance=w3,severity=critical}"
