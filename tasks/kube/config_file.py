"""Read a kubeconfig the operator named and say in one line why it cannot be used.

The kubernetes client's loader answers a file that is not a kubeconfig with a TypeError or a
YAML ParserError deep in its merger; these checks run first so the operator reads which file,
what is wrong with it, and what is expected instead of a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

EXPECTED = "a kubeconfig is a YAML mapping with clusters, contexts and users"


class KubeConfigError(ValueError):
    """The kubeconfig or context cannot be used; a user error (nothing was touched)."""


def kubeconfig_paths(spec: str) -> list[Path]:
    """The files of a KUBECONFIG-style list (``a:b``), as kubectl reads it; empty parts skipped."""
    return [Path(part).expanduser() for part in spec.split(os.pathsep) if part]


def check_kubeconfig(spec: str) -> None:
    """Raise KubeConfigError naming the file when ``spec`` (a path or a KUBECONFIG list) names
    no file, a file that cannot be read, YAML that does not parse, or YAML that is not a
    mapping. What the mapping holds (contexts, users) is left to the client's loader."""
    paths = kubeconfig_paths(spec)
    existing = [p for p in paths if p.exists()]
    if not existing:  # kubectl skips missing files in a list, but not all of them
        raise KubeConfigError(f"kubeconfig {spec} does not exist")
    for path in existing:
        check_kubeconfig_file(path)


def check_kubeconfig_file(path: Path) -> None:
    """One file: readable text, valid YAML, a mapping (or empty, which the loader reports)."""
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise KubeConfigError(f"kubeconfig {path} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise KubeConfigError(f"kubeconfig {path} is not a text file; {EXPECTED}") from None
    except OSError as exc:
        raise KubeConfigError(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeConfigError(
            f"kubeconfig {path} is not valid YAML: {_yaml_problem(exc)}"
        ) from None
    if content is not None and not isinstance(content, dict):
        found = type(content).__name__
        raise KubeConfigError(
            f"kubeconfig {path} is not a kubeconfig (found a {found}); {EXPECTED}"
        )


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``line 2, column 1: expected ',' or ']'`` rather than PyYAML's multi-line report."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
