"""Config updates as users write them: ``with a.b=1 'name="x"' small file.yaml`` or a dict for ``run()``."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Iterable

from labrun.config import patch
from labrun.config.patch import Merge
from labrun.errors import CommandLineError, ConfigError


@dataclass
class ParsedUpdates:
    """Update tokens split into fixed values (a patch) and named configs, in command-line order."""

    fixed: Merge = field(default_factory=Merge)
    named_configs: list[str] = field(default_factory=list)


def parse_value(text: str) -> Any:
    """A Python literal (``1e-3``, ``[1, 2]``, ``{'k': 1}``, ``True``, ``None``), or else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_update_token(token: str) -> tuple[patch.KeyPath, patch.Node]:
    """``key=value`` or ``key:=value`` into the path it fixes and its node; a clear error for bad tokens."""
    key, sep, text = token.partition("=")
    replace = key.endswith(":")
    if replace:
        key = key[:-1]
    if not key:
        raise CommandLineError(f"update '{token}' has no key before '='; write it as key=value, e.g. lr=0.1")
    if not text:
        raise CommandLineError(
            f"update '{token}' has no value after '='; write {key}=VALUE, or {key}='' for an empty string")
    parts = key.split(".")
    if any(not p or p != p.strip() for p in parts):
        raise CommandLineError(
            f"update '{token}' has an empty or padded part in its key '{key}'; "
            f"write nested keys as a.b=1, list elements as a.0=1")
    value = parse_value(text)
    return patch.split_key(key), patch.Replace(value) if replace else patch.from_value(value)


def parse_update_tokens(tokens: Iterable[str]) -> ParsedUpdates:
    """Everything after ``with``: assignments become fixed values, other tokens name configs or files."""
    parsed = ParsedUpdates()
    assignments = []
    for token in tokens:
        if "=" in token:
            assignments.append(parse_update_token(token))
        else:
            parsed.named_configs.append(token)
    parsed.fixed = patch.from_assignments(assignments)
    return parsed


def updates_from_dict(updates: dict[str, Any] | None) -> Merge:
    """``run(config_updates=...)``: nested dicts merge, dotted keys address nested entries."""
    if not updates:
        return Merge()
    if not isinstance(updates, dict):
        raise ConfigError(f"config_updates must be a dict, got {type(updates).__name__}")
    return patch.from_assignments(
        [(patch.split_key(str(key)), patch.from_value(value)) for key, value in updates.items()])
