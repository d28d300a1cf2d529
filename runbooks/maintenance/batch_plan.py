"""Which nodes go out together, never more than max-unavailable at once.

Counted from the cluster before every batch: nodes of the pool that are already unschedulable or
NotReady use up the budget, whoever took them out. A node that is already out and in the batch
(e.g. left cordoned by an earlier run of ours) costs nothing extra.
"""

from __future__ import annotations


def next_batch(remaining: list[str], out_now: set[str], limit: int) -> list[str]:
    """Nodes of ``remaining`` that are out already (a crashed run's cordons, NotReady nodes)
    always: finishing them only brings nodes back. Then, in order, nodes as long as
    |out + batch| stays within ``limit``."""
    batch = [n for n in remaining if n in out_now]
    for node in remaining:
        if node not in batch and len(out_now | set(batch) | {node}) <= limit:
            batch.append(node)
    return batch


def plan_batches(order: list[str], out_now: set[str], limit: int) -> list[list[str]]:
    """The batches the rollout expects, if nothing changes meanwhile; nodes of ``order`` that
    are out now come back when their batch finishes. An empty list means no progress possible."""
    remaining = list(order)
    external = out_now - set(order)
    pending_out = out_now & set(order)
    batches: list[list[str]] = []
    while remaining:
        batch = next_batch(remaining, external | pending_out, limit)
        if not batch:
            break
        batches.append(batch)
        remaining = [n for n in remaining if n not in batch]
        pending_out -= set(batch)
    return batches


def cordons_to_give_back(ours_out: list[str], out_now: set[str], limit: int) -> list[str]:
    """A crashed run may have left more of its cordons than this run's limit allows (say it ran
    with max-unavailable 3 and the rerun says 1). Give the excess back (uncordon) before
    starting, latest in plan order first, so the rollout resumes within the limit."""
    excess = len(out_now) - limit
    if excess <= 0 or not ours_out:
        return []
    return ours_out[-min(excess, len(ours_out)) :]
