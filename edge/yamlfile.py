"""Reading a YAML settings file strictly, and turning validation errors into one line each.

Shared by the agent's and the dashboard's configs: both should stop at once on a typo with
``file: field.path: problem`` lines instead of running on a silent default.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """An unusable config; the message has one ``file: field.path: problem`` line per problem."""


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice (YAML would silently keep the last)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file; ``what`` names the expected keys in the error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_mapping(text, str(path), what)


def parse_mapping(text: str, source: str, what: str) -> dict[str, Any]:
    """`read_mapping` for text already in hand (a form field); ``source`` names it in errors."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {_yaml_problem(exc)}") from exc
    except ValueError as exc:  # a timestamp-looking scalar that is no date: 2024-02-30
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings ({what})")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}invalid YAML: {problem}"


def problems(
    exc: ValidationError, root: type[BaseModel], nested: frozenset[str] = frozenset()
) -> list[str]:
    """One ``field.path: message`` line per error; unknown keys list the valid ones. A value
    error on a top-level field named in ``nested`` holds ``name: problem`` lines, each of
    which becomes ``field.name: problem``."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            valid = settings_at(root, err["loc"][:-1])
            msg = f"unknown setting (valid: {', '.join(valid)})" if valid else "unknown setting"
        if err["type"] == "value_error" and field in nested:
            lines.extend(f"{field}.{line}" for line in msg.splitlines())
        else:
            lines.append(f"{field}: {msg}")
    return lines


def settings_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the config section at ``loc`` (for 'unknown setting' messages)."""
    model = root
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        inner = typing.get_args(field.annotation) or (field.annotation,)
        models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not models:
            return []
        model = models[0]
    return list(model.model_fields)


def resolve(base: Path, p: Path | None) -> Path | None:
    """``p`` relative to ``base`` (the config file's folder) unless absolute; ``~`` expanded."""
    if p is None:
        return None
    p = p.expanduser()
    return p if p.is_absolute() else base / p
