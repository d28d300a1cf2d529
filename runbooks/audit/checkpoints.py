"""Signed checkpoints of the chain's head, kept outside the database.

The hash chain proves that no record changed in the middle; it cannot prove that the newest
records still exist: delete them and copy the previous hash into ``audit_head``, and the
database is consistent again. A checkpoint says "this store had record SEQ with hash H", is
signed, and is appended to a file outside the database; ``verify`` fails when the chain is
shorter than, or disagrees with, any checkpoint.

Signed with ed25519 rather than an HMAC: checking a signature needs only the public key, so
the auditors and machines that verify the trail cannot forge checkpoints; only the process
holding the private key (the worker, the CLI that runs runbooks) can write one.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from runbooks.audit.chain import Anchor, canonical_json
from runbooks.audit.models import now_text
from runbooks.settings import get_settings

ANCHOR_FILE_NAME = "audit-anchors.jsonl"


class AnchorConfigError(ValueError):
    """The operator's anchoring configuration is unusable (a key file missing or not ed25519)."""


class AnchorSettings(BaseSettings):
    """Where checkpoints go and which keys sign and check them (``RUNBOOK_AUDIT_ANCHOR_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="RUNBOOK_AUDIT_ANCHOR_", extra="ignore", env_ignore_empty=True
    )

    key: Path | None = Field(
        default=None,
        description="ed25519 private key (PEM) that signs checkpoints; unset: none are written.",
    )
    public_key: Path | None = Field(
        default=None,
        description="ed25519 public key (PEM) that checks them; default: the private key's.",
    )
    file: Path | None = Field(
        default=None,
        description="The append-only checkpoint file; default: audit-anchors.jsonl in the "
        "state dir.",
    )

    @property
    def path(self) -> Path:
        return self.file or Path(get_settings().state_dir) / ANCHOR_FILE_NAME


def anchor_settings() -> AnchorSettings:
    """Read from the environment on every call: cheap, and tests and operators can change it."""
    return AnchorSettings()


def key_id(public: Ed25519PublicKey) -> str:
    """A short name for a key, stored with each checkpoint so a key mix-up reads as one."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AnchorConfigError(f"{what} {path}: cannot read it ({exc.strerror})") from None


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    data = _read_key_file(path, "audit anchor key (RUNBOOK_AUDIT_ANCHOR_KEY)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AnchorConfigError(
            f"audit anchor key {path} is not an unencrypted PEM private key ({exc}); "
            "create one with `runbook audit keygen PATH`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AnchorConfigError(f"audit anchor key {path} is not an ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read_key_file(path, "audit anchor public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        # A private key file also gives its public half.
        return load_signing_key(path).public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise AnchorConfigError(f"audit anchor public key {path} is not an ed25519 key")
    return key


def generate_key(path: Path) -> Path:
    """Write a new private key to ``path`` (0600, never over an existing file) and its public
    key to ``path.pub``; returns the public key's path."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub_path = path.with_name(path.name + ".pub")
    for target in (path, pub_path):
        if target.exists():
            raise AnchorConfigError(f"{target} exists already: not overwriting a key")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    pub_path.write_bytes(public)
    return pub_path


class Checkpoint(BaseModel):
    """One signed line of the checkpoint file: the store had record ``seq`` with ``hash``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    store: str = Field(min_length=1)
    seq: int = Field(ge=1)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: str
    by: str
    key_id: str
    sig: str = ""

    def signed_text(self) -> bytes:
        """What the signature covers: every field but the signature, in one text form."""
        return canonical_json(self.model_dump(exclude={"sig"})).encode("utf-8")


def sign(key: Ed25519PrivateKey, store: str, seq: int, digest: str, by: str) -> Checkpoint:
    unsigned = Checkpoint(
        store=store, seq=seq, hash=digest, at=now_text(), by=by, key_id=key_id(key.public_key())
    )
    signature = key.sign(unsigned.signed_text())
    return unsigned.model_copy(update={"sig": base64.b64encode(signature).decode("ascii")})


def signature_ok(checkpoint: Checkpoint, public: Ed25519PublicKey) -> bool:
    try:
        public.verify(base64.b64decode(checkpoint.sig, validate=True), checkpoint.signed_text())
    except (InvalidSignature, ValueError):
        return False
    return True


def append(path: Path, checkpoint: Checkpoint) -> None:
    """Add one line at the end (O_APPEND, under an exclusive flock, fsynced): several processes
    may checkpoint at once, and a line is either all there or not."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    line = (checkpoint.model_dump_json() + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def writer_name(what: str) -> str:
    """Who wrote a checkpoint, for the person reading the file: ``run <id>`` on host, pid."""
    return f"{what} ({socket.gethostname()}, pid {os.getpid()})"


@dataclass
class CheckpointReading:
    """What the checkpoint file says about one store, and what in it does not check out."""

    path: Path
    exists: bool
    anchors: list[Anchor] = field(default_factory=list)
    other_stores: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def newest(self) -> Anchor | None:
        return max(self.anchors, key=lambda a: a.seq, default=None)


def read(path: Path, public: Ed25519PublicKey, store: str) -> CheckpointReading:
    """Every line must parse and carry a valid signature; lines for other stores are counted,
    not checked against this one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return CheckpointReading(path, exists=False)
    except OSError as exc:
        raise AnchorConfigError(
            f"checkpoint file {path}: cannot read it ({exc.strerror})"
        ) from None
    reading = CheckpointReading(path, exists=True)
    expected_key = key_id(public)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        reading.problems.append(f"{path} line {len(lines)}: cut short (no line end)")
    for number, raw in enumerate(lines, start=1):
        where = f"{path} line {number}"
        try:
            checkpoint = Checkpoint.model_validate_json(raw)
        except ValidationError:
            reading.problems.append(f"{where}: not a checkpoint (edited or corrupted)")
            continue
        if not signature_ok(checkpoint, public):
            other = (
                f"; it names key {checkpoint.key_id}, the configured key is {expected_key}"
                if checkpoint.key_id != expected_key
                else ""
            )
            reading.problems.append(
                f"{where}: signature does not verify (the line was edited, or signed with "
                f"another key{other})"
            )
            continue
        if checkpoint.store != store:
            reading.other_stores += 1
            continue
        source = f"checkpoint {where} ({checkpoint.at}, {checkpoint.by})"
        reading.anchors.append(Anchor(checkpoint.seq, checkpoint.hash, source=source))
    return reading


def write(store: str, seq: int, digest: str, by: str, settings: AnchorSettings) -> Checkpoint:
    """Sign ``seq``/``digest`` of ``store`` with the configured key and append it."""
    if settings.key is None:
        raise AnchorConfigError(
            "no signing key: set RUNBOOK_AUDIT_ANCHOR_KEY to an ed25519 private key file "
            "(create one with `runbook audit keygen PATH`)"
        )
    checkpoint = sign(load_signing_key(settings.key), store, seq, digest, by)
    append(settings.path, checkpoint)
    return checkpoint


def read_configured(
    store: str,
    settings: AnchorSettings,
    path: Path | None = None,
    public_key: Path | None = None,
) -> CheckpointReading:
    """The checkpoints ``verify`` checks against: the given or configured file and key. A
    file with checkpoints but no key to check them is a configuration mistake, not a pass."""
    where = path or settings.path
    key_path = public_key or settings.public_key or settings.key
    if key_path is None:
        if where.exists() and where.stat().st_size > 0:
            raise AnchorConfigError(
                f"{where} holds signed checkpoints but no key is configured to check them: "
                "set RUNBOOK_AUDIT_ANCHOR_PUBLIC_KEY (or pass --public-key)"
            )
        return CheckpointReading(where, exists=where.exists())
    return read(where, load_public_key(key_path), store)
