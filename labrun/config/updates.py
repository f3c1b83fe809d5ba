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


LITERAL_STARTS = ("[", "{", "(", "'", '"')  # a value starting so is meant as a literal, never as plain text


def parse_value(text: str, key: str = "") -> Any:
    """A Python literal (``1e-3``, ``[1, 2]``, ``{'k': 1}``, ``True``, ``None``), or else the text itself.

    A value that starts like a literal (a bracket or a quote) but does not parse is an error that points at
    the problem: ``sizes=[1,2`` is a typo, not the string "[1,2". Quote it to mean the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        if not text.lstrip().startswith(LITERAL_STARTS):
            return text
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        if isinstance(exc, SyntaxError) and exc.offset:
            reason += f", at character {exc.offset}"
        raise CommandLineError(
            f"the value {text!r} of '{key}' starts like a Python literal but does not parse ({reason}); "
            f"complete it, or quote the whole value to mean a string: {key}='\"{text}\"'"
        ) from None


def split_update_token(token: str) -> tuple[str, str, bool]:
    """``key=value`` or ``key:=value`` into (key, value text, whether it replaces); a clear error for a bad
    key or a missing value. The value is not parsed here (a sweep splits it first)."""
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
    return key, text, replace


def parse_update_token(token: str) -> tuple[patch.KeyPath, patch.Node]:
    """``key=value`` or ``key:=value`` into the path it fixes and its node; a clear error for bad tokens."""
    key, text, replace = split_update_token(token)
    value = parse_value(text, key)
    return patch.split_key(key), patch.Replace(value) if replace else patch.from_value(value)


def parse_update_tokens(tokens: Iterable[str]) -> ParsedUpdates:
    """Everything after ``with``: assignments become fixed values, other tokens name configs or files."""
    parsed = ParsedUpdates()
    assignments = []
    given: dict[patch.KeyPath, str] = {}
    for token in tokens:
        if "=" in token:
            path, node = parse_update_token(token)
            if path in given:
                raise CommandLineError(
                    f"'{patch.format_path(path)}' is given twice ({given[path]} and {token}); keep one of them")
            given[path] = token
            assignments.append((path, node))
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
