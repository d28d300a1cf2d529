"""Every backup check, in the order the report lists them."""

from __future__ import annotations

from runbooks.backups import (
    coverage_checks,
    cronjob_checks,
    drill_checks,
    etcd_checks,
    velero_checks,
)
from runbooks.kit.checks import CheckSpec

CHECKS: list[CheckSpec] = [
    *coverage_checks.CHECKS,
    *velero_checks.CHECKS,
    *cronjob_checks.CHECKS,
    *etcd_checks.CHECKS,
    *drill_checks.CHECKS,
]
