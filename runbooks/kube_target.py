"""Which cluster a command acts on: KUBECONFIG / --kubeconfig / --context, as kubectl."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class KubeTarget(BaseModel):
    """A kubeconfig file and context; ``None`` means kubectl's defaults (KUBECONFIG, then
    ~/.kube/config, then in-cluster service account)."""

    kubeconfig: Path | None = Field(default=None, description="Path to a kubeconfig file.")
    context: str | None = Field(default=None, description="Context in the kubeconfig.")

    def describe(self) -> str:
        where = str(self.kubeconfig) if self.kubeconfig else "default kubeconfig"
        return f"{where}, context {self.context or '(current)'}"
