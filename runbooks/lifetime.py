"""Child processes that must not outlive the process that started them.

A test session or ``runbook serve`` that is killed with SIGKILL runs no cleanup, and children
started in their own session (so a Ctrl-C reaches only the parent) would run on for good:
servers holding ports and CPU. Linux can tie a child to its parent instead: the kernel sends
the child a signal when the parent dies, however it dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def stop_with_this_process(
    sig: signal.Signals = signal.SIGTERM,
) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``sig`` when we die.

    The kernel ties the child to the *thread* that starts it, so start such children from a
    thread that lives as long as the process (the main thread). None where Linux's prctl is
    not available: the child is then stopped only by our own cleanup.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the child only calls it
    parent = os.getpid()

    def tie_to_parent() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), sig)

    return tie_to_parent
