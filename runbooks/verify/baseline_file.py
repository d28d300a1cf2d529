"""Reading a baseline file: every mistake is one line naming the file, the line and the key.

``baseline.yaml line 12: unknown key 'nodepool' (known: version, nodepools, ...)`` rather than
a pydantic dump: the person fixing it opens the file at that line.
"""

from __future__ import annotations

import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from runbooks.verify.baseline import Baseline


class BaselineError(ValueError):
    """The baseline cannot be used (bad input: exit 2, nothing was read from the cluster)."""


def shipped_baseline(name: str = "local") -> Path:
    """A baseline shipped in the package (``local``: the local dev cluster)."""
    return Path(str(resources.files("runbooks.verify") / "baselines" / f"{name}.yaml"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A mapping with the same key twice is a mistake (YAML keeps the last one silently)."""


def _no_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _no_duplicates,
)


def load_baseline(path: Path | str) -> Baseline:
    """The baseline in ``path``; ``BaselineError`` (one line) for anything wrong with it."""
    path = Path(path)
    name = path.name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"baseline file {path} not found") from None
    except IsADirectoryError:
        raise BaselineError(f"baseline {path} is a directory, not a YAML file") from None
    except UnicodeDecodeError:
        raise BaselineError(f"baseline {path} is not UTF-8 text") from None
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    return parse_baseline(text, name)


def parse_baseline(text: str, name: str = "baseline") -> Baseline:
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark else ""
        raise BaselineError(f"{name}{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise BaselineError(f"{name}: not valid YAML: {exc}") from None
    if data is None:
        raise BaselineError(f"{name}: empty; a baseline is a mapping of sections (see the docs)")
    if not isinstance(data, dict):
        raise BaselineError(
            f"{name} line 1: a baseline is a mapping of sections, not a {type(data).__name__}"
        )
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        raise BaselineError(_describe(exc, root, name)) from None


def _describe(exc: ValidationError, root: yaml.Node | None, name: str) -> str:
    """The first error as ``<file> line N: <where>: <what>``; a misspelt key first, since the
    "field required" beside it is its consequence."""
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(error["loc"])
    line = _line(root, loc)
    where = f"{name} line {line}" if line else name
    path = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden":
        known = ", ".join(_known_keys(Baseline, loc[:-1]))
        section = path.rpartition(".")[0]
        inside = f" in {section}" if section else ""
        return f"{where}: unknown key {loc[-1]!r}{inside} (known: {known})"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node on ``loc`` (a key's own line for mappings)."""
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    best = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return best
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return best
            node = node.value[part]
            best = node.start_mark.line + 1
        else:
            return best
    return best


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at ``loc`` (a path of keys and list indexes) under ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
    return list(current.model_fields) if _is_model(current) else []


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside ``X | None``, ``list[X]``, ..."""
    if _is_model(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
