"""Batches never take more than max-unavailable nodes out, counting nodes already out."""

from __future__ import annotations

import pytest

from runbooks.maintenance.batch_plan import cordons_to_give_back, next_batch, plan_batches

NODES = ["n1", "n2", "n3", "n4", "n5"]


@pytest.mark.parametrize(
    ("order", "out_now", "limit", "expected"),
    [
        (NODES, set(), 1, [["n1"], ["n2"], ["n3"], ["n4"], ["n5"]]),
        (NODES, set(), 2, [["n1", "n2"], ["n3", "n4"], ["n5"]]),
        (NODES, set(), 5, [NODES]),
        (NODES, {"other"}, 2, [["n1"], ["n2"], ["n3"], ["n4"], ["n5"]]),  # someone else's cordon
        (NODES, {"other"}, 1, []),  # no room at all: no progress possible
        (NODES, {"n3"}, 1, [["n3"], ["n1"], ["n2"], ["n4"], ["n5"]]),  # our own out node first
        (NODES, {"n3"}, 2, [["n3", "n1"], ["n2", "n4"], ["n5"]]),
        (NODES, {"n1", "n2", "n3"}, 1, [["n1", "n2", "n3"], ["n4"], ["n5"]]),  # crashed run
        ([], set(), 3, []),
    ],
)
def test_batches_respect_max_unavailable(order, out_now, limit, expected):
    batches = plan_batches(order, out_now, limit)

    assert batches == expected
    external = out_now - set(order)
    ours_out = out_now & set(order)  # already out: finishing them adds nothing
    assert all(len((set(b) - ours_out) | external) <= limit for b in batches)


def test_next_batch_counts_what_the_cluster_says_is_out_now():
    assert next_batch(["a", "b", "c"], out_now={"x", "y"}, limit=3) == ["a"]
    assert next_batch(["a", "b", "c"], out_now={"x", "y", "z"}, limit=3) == []
    assert next_batch(["a", "b"], out_now={"b"}, limit=1) == ["b"]
    assert next_batch(["a", "b", "c"], out_now={"b", "c"}, limit=1) == ["b", "c"]


@pytest.mark.parametrize(
    ("ours_out", "out_now", "limit", "give_back"),
    [
        (["a", "b", "c"], {"a", "b", "c"}, 1, ["b", "c"]),
        (["a"], {"a", "x"}, 1, ["a"]),  # someone else's cordon x already uses the limit
        (["a", "b"], {"a", "b"}, 2, []),
        ([], {"x", "y"}, 1, []),  # not ours to give back
    ],
)
def test_a_rerun_gives_back_cordons_beyond_its_limit(ours_out, out_now, limit, give_back):
    assert cordons_to_give_back(ours_out, out_now, limit) == give_back
