"""The hash chain: each record's hash covers its fields and the hash of the record before it.

Changing, deleting, inserting or reordering a row breaks the chain at that row, so `verify`
can name the first record that no longer fits. Pure functions, no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runbooks.kit.digest import canonical_json, sha256_hex

GENESIS = "0" * 64

# The fields a record's hash covers, in order. Changing this list breaks every existing chain.
HASHED_FIELDS = (
    "seq",
    "at",
    "runbook",
    "flow_run_id",
    "actor",
    "action",
    "target_kind",
    "target",
    "phase",
    "outcome",
    "intent_seq",
    "approval_id",
    "details",
    "prev_hash",
)


def record_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the hashed fields; ``details`` is the stored JSON text, hashed as stored."""
    return sha256_hex(canonical_json([row[name] for name in HASHED_FIELDS]))


@dataclass(frozen=True)
class Break:
    """The first record that does not fit the chain, and why."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.reason}"


@dataclass(frozen=True)
class Verdict:
    """The result of walking the whole chain."""

    checked: int
    first_break: Break | None
    head_seq: int
    head_hash: str

    @property
    def ok(self) -> bool:
        return self.first_break is None


@dataclass(frozen=True)
class Anchor:
    """A record's hash kept outside the database (a ticket, an archive): ``SEQ:HASH``.

    The chain alone cannot tell a consistent rewrite by someone with database access from
    the truth; an anchor kept elsewhere can."""

    seq: int
    hash_prefix: str
    # Where the anchor came from, for the message: ``--anchor``, or a checkpoint's file and line.
    source: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> Anchor:
        seq, sep, digest = text.strip().partition(":")
        digest = digest.lower()
        if (
            not sep
            or not seq.isdigit()
            or int(seq) < 1
            or not 12 <= len(digest) <= 64
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise ValueError(
                f"anchor {text!r} is not SEQ:HASH (a record number and at least 12 hex digits "
                "of its hash, as `runbook audit verify` prints them)"
            )
        return cls(int(seq), digest)

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash_prefix}"

    def named(self) -> str:
        """The anchor and where it was kept, for messages."""
        short = f"{self.seq}:{self.hash_prefix[:16]}"
        return f"{self.source} ({short})" if self.source else f"the anchor {short}"


def walk(
    rows: Iterable[dict[str, Any]],
    head_seq: int | None = None,
    head_hash: str | None = None,
    anchor: Anchor | None = None,
    anchors: Iterable[Anchor] = (),
) -> Verdict:
    """Check rows in sequence order; stop at the first that does not fit.

    ``head_seq``/``head_hash`` is what the store says the last record is; a row beyond it
    (inserted) or a head beyond the last row (tail deleted) is a break too. ``anchor`` and
    ``anchors`` are hashes kept outside the database (``--anchor``, signed checkpoints): the
    records they name must still exist and still have them, so a chain cut short below the
    newest anchor (records deleted, head rewound to match) is a break.
    """
    kept: dict[int, list[Anchor]] = {}
    for one in [*([anchor] if anchor else []), *anchors]:
        kept.setdefault(one.seq, []).append(one)
    expected_seq = 1
    prev = GENESIS
    checked = 0
    for row in rows:
        seq = row["seq"]
        if seq > expected_seq:
            gap = f"records {expected_seq}-{seq - 1} are" if seq > expected_seq + 1 else "it is"
            reason = (
                f"missing (deleted): {gap} gone, record {seq} follows record {expected_seq - 1}"
            )
            return Verdict(checked, Break(expected_seq, reason), expected_seq - 1, prev)
        if seq < expected_seq:
            reason = f"out of order: appears after record {expected_seq - 1}"
            return Verdict(checked, Break(seq, reason), expected_seq - 1, prev)
        if row["prev_hash"] != prev:
            reason = (
                "does not link to the record before it (prev_hash differs: "
                "the record before was changed, or this one was inserted)"
            )
            return Verdict(checked, Break(seq, reason), seq - 1, prev)
        actual = record_hash(row)
        if actual != row["hash"]:
            return Verdict(
                checked,
                Break(seq, "content changed after it was written (hash mismatch)"),
                seq - 1,
                prev,
            )
        differs = [a for a in kept.get(seq, ()) if not row["hash"].startswith(a.hash_prefix)]
        if differs:
            reason = f"differs from {differs[0].named()} kept outside the store: chain rewritten"
            return Verdict(checked, Break(seq, reason), seq - 1, prev)
        if head_seq is not None and seq > head_seq:
            return Verdict(
                checked,
                Break(seq, f"is beyond the chain head (head ends at record {head_seq}): inserted"),
                seq - 1,
                prev,
            )
        checked += 1
        prev = row["hash"]
        expected_seq = seq + 1
    last = expected_seq - 1
    every = [a for a in (anchor, *anchors) if a is not None]
    beyond = max(every, key=lambda a: a.seq, default=None)
    if beyond is not None and beyond.seq > last:
        gone = f"records {last + 1}-{beyond.seq} are" if beyond.seq > last + 1 else "it is"
        reason = (
            f"missing (deleted): {gone} gone, the chain ends at record {last} but "
            f"{beyond.named()} says record {beyond.seq} existed"
        )
        return Verdict(checked, Break(last + 1, reason), last, prev)
    if head_seq is not None and head_seq > last:
        return Verdict(
            checked,
            Break(last + 1, f"missing: the chain head says {head_seq} records exist (deleted)"),
            last,
            prev,
        )
    if head_hash is not None and head_seq == last and head_hash != prev:
        return Verdict(checked, Break(last, "differs from the chain head's hash"), last, prev)
    return Verdict(checked, None, last, prev)
