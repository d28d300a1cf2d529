"""The chain heads that runs left on their Prefect artifacts, read back as anchors.

Prefect's database is not the audit database: a run's ``audit-head-<runbook>`` artifact is a
witness of its last record that someone who truncates the audit store must also find and
delete. Unsigned: a forged artifact can raise a false alarm, never hide tampering.
"""

from __future__ import annotations

from runbooks.audit.chain import Anchor
from runbooks.audit.summary import HEAD_ANCHOR, HEAD_ARTIFACT_PREFIX, HEAD_STORE

PAGE = 200  # the Prefect server's largest page


class PrefectUnavailable(RuntimeError):
    """No Prefect API is configured, or it did not answer; the message says which."""


def read_prefect_heads(store: str) -> tuple[list[Anchor], int]:
    """Every run head artifact for ``store``; also how many name another store."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if not api:
        raise PrefectUnavailable("no Prefect API configured (PREFECT_API_URL is unset)")
    found: list[Anchor] = []
    others = 0
    wanted = ArtifactFilter(key=ArtifactFilterKey(like_=f"{HEAD_ARTIFACT_PREFIX}%"))
    try:
        with get_client(sync_client=True) as client:
            offset = 0
            while True:
                page = client.read_artifacts(artifact_filter=wanted, limit=PAGE, offset=offset)
                for artifact in page:
                    text = str(artifact.data or "")
                    named, anchor = HEAD_STORE.search(text), HEAD_ANCHOR.search(text)
                    if not named or not anchor:
                        continue
                    if named.group(1) != store:
                        others += 1
                        continue
                    source = f"Prefect artifact {artifact.key} of run {artifact.flow_run_id}"
                    found.append(Anchor(int(anchor.group(1)), anchor.group(2), source=source))
                if len(page) < PAGE:
                    break
                offset += PAGE
    except Exception as exc:  # transport or API error: one line naming the API
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PrefectUnavailable(f"Prefect API at {api} did not answer ({first})") from None
    return found, others
