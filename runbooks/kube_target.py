"""Which cluster a command acts on: KUBECONFIG / --kubeconfig / --context, as kubectl."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field


class KubeTarget(BaseModel):
    """A kubeconfig file and context; ``None`` means kubectl's defaults (KUBECONFIG, then
    ~/.kube/config, then in-cluster service account)."""

    kubeconfig: Path | None = Field(default=None, description="Path to a kubeconfig file.")
    context: str | None = Field(default=None, description="Context in the kubeconfig.")

    def describe(self) -> str:
        """Name the kubeconfig actually used, so an error points at the right file."""
        where = str(self.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")
        return f"{where}, context {self.context or '(current)'}"
