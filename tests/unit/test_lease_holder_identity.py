"""Whose Lease it is, from its holderIdentity: a rerun on the machine where the holder was
killed takes it over at once, and never a Lease whose holder may be alive elsewhere."""

from __future__ import annotations

import pytest

from runbooks.maintenance.lease_holder import HolderIdentity, Machine, dead_local_holder

BOOT = "aa7c0473-e553-43cd-ad16-a8b2ce7ce48e"
HERE = Machine(host="laptop", boot=BOOT)
OURS = f"rolling-node-maintenance run local-1a2b3c4d5e6f (ana@laptop, boot {BOOT}, pid 4242)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            OURS,
            HolderIdentity(
                "rolling-node-maintenance", "local-1a2b3c4d5e6f", "ana", "laptop", BOOT, 4242
            ),
        ),
        # written before boot IDs were recorded: parsed, but never "this machine"
        (
            "rolling-node-maintenance run 0f1e (runner@worker-5d8f, pid 1)",
            HolderIdentity("rolling-node-maintenance", "0f1e", "runner", "worker-5d8f", None, 1),
        ),
        (  # no user name: "uid<N>"
            "rolling-node-maintenance run x (uid1000@h, boot ab-12, pid 7)",
            HolderIdentity("rolling-node-maintenance", "x", "uid1000", "h", "ab-12", 7),
        ),
        ("kube-controller-manager_3f2a", None),  # another tool's lease
        ("", None),
        (None, None),
        ("rolling-node-maintenance run x (ana@laptop, pid seven)", None),
        ("rolling-node-maintenance run x (ana@laptop, boot zz, pid 7)", None),
    ],
)
def test_holder_identity_is_read_back_as_written(text, expected):
    assert HolderIdentity.parse(text) == expected
    if expected is not None:
        assert HolderIdentity.parse(str(expected)) == expected


def gone(pid: int) -> bool:
    return False


def running(pid: int) -> bool:
    return True


@pytest.mark.parametrize(
    ("holder", "machine", "alive", "own_pid", "takes_over"),
    [
        (OURS, HERE, gone, 1, True),  # killed in this terminal: take over at once
        (OURS, HERE, running, 1, False),  # still running here: wait for it
        (OURS, HERE, gone, 4242, False),  # that PID is this process: not a dead holder
        (OURS, Machine("laptop", "another-boot"), gone, 1, False),  # rebooted, or a namesake
        (OURS, Machine("laptop", None), gone, 1, False),  # cannot tell which machine
        (OURS, Machine("desktop", BOOT), gone, 1, False),
        ("rolling-node-maintenance run x (ana@laptop, pid 4242)", HERE, gone, 1, False),
        ("someone by hand", HERE, gone, 1, False),
    ],
)
def test_only_a_dead_process_of_this_machine_is_taken_over_at_once(
    holder, machine, alive, own_pid, takes_over
):
    found = dead_local_holder(holder, machine, alive, own_pid)
    assert (found is not None) == takes_over
