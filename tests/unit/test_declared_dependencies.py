"""Everything imported is declared in pyproject.toml: the runtime packages' imports in
[project] dependencies, the tests', benchmarks' and dev tools' in the dev extra too. A package
that only arrives as someone else's dependency (urllib3 through kubernetes, httpx through
prefect) disappears the day they drop it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"flows", "tasks", "runbooks", "tests", "bench", "devtools", "__future__"}


def _names(requirements: list[str]) -> set[str]:
    return {_normal(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def _undeclared(dirs: list[str], declared: set[str]) -> dict[str, str]:
    """Top-level module -> a file importing it, for third-party modules no declared
    distribution provides."""
    provides = packages_distributions()
    found: dict[str, str] = {}
    for folder in dirs:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in OURS or top in sys.stdlib_module_names:
                        continue
                    if not {_normal(d) for d in provides.get(top, [top])} & declared:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_package_the_runbooks_import_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _names(project["dependencies"])
    assert _undeclared(["flows", "tasks", "runbooks"], runtime) == {}


def test_every_package_tests_bench_and_devtools_import_is_declared_for_development():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    everything = _names(project["dependencies"] + extras["dev"] + extras.get("postgres", []))
    assert _undeclared(["tests", "bench", "devtools"], everything) == {}
