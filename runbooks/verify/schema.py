"""The baseline's JSON Schema, generated from the model and published in docs/ (editors use it
to complete and check baseline files; a unit test keeps the published copy in sync)."""

from __future__ import annotations

import json
from pathlib import Path

from runbooks.verify.baseline import Baseline

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "baseline.schema.json"


def baseline_schema() -> str:
    schema = Baseline.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "kube-runbooks provision verification baseline"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m runbooks.verify.schema > docs/baseline.schema.json
    print(baseline_schema(), end="")
