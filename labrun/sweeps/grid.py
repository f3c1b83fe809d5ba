"""What a sweep runs: the points of a grid written on the command line (``-M with lr=0.1,0.01 small,large``),
in a sweep file (``grid:`` and ``list:``) or given to ``ex.sweep({...})``.

A point is the list of update tokens one run gets after ``with``, exactly as ``python exp.py with ...`` takes
them, and the values it sweeps (for its seed, its record and the summary table). Swept values are written
back as ``key=repr(value)``, which the update parser reads as the same value.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from labrun.config.files import is_config_file_name, load_config_file
from labrun.config.updates import parse_value, split_update_token
from labrun.errors import CommandLineError

NAMED_CONFIGS_KEY = "with"  # the axis of named configs, in sweep files, ex.sweep() and swept values
SWEEP_FILE_KEYS = ("grid", "list")
_EXPANSION = re.compile(r"^(range|linspace|logspace)\((.*)\)$", re.S)


@dataclass(frozen=True)
class Choice:
    """One value of one swept entry: the token that sets it and the value it stands for."""

    key: str
    value: Any
    tokens: tuple[str, ...]


@dataclass
class Point:
    """One run of a sweep: its update tokens (fixed ones first) and the values it sweeps."""

    tokens: list[str]
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Grid:
    """Fixed tokens every run gets, the axes whose product is swept, and explicit configs (``list:``)."""

    fixed: list[str] = field(default_factory=list)
    axes: list[list[Choice]] = field(default_factory=list)
    listed: list[list[Choice]] = field(default_factory=list)

    def points(self) -> list[Point]:
        """Every combination: the product of the axes, times each explicit config when there are some."""
        listed = self.listed or [[]]
        points = []
        for combination in itertools.product(*self.axes):
            for extra in listed:
                point = Point(tokens=list(self.fixed))
                for choice in (*combination, *extra):
                    for token in choice.tokens:
                        _put(point.tokens, token)
                    point.values[choice.key] = choice.value
                points.append(point)
        return points


def _put(tokens: list[str], token: str) -> None:
    """Add ``token``; an update of a key already there replaces it (a ``list:`` entry overrides a fixed value),
    so each run's command line names every key once."""
    key = token.partition("=")[0].removesuffix(":") if "=" in token else None
    if key is not None:
        tokens[:] = [t for t in tokens if "=" not in t or t.partition("=")[0].removesuffix(":") != key]
    tokens.append(token)


def split_top_level(text: str) -> list[str]:
    """``"0.1,[1,2],'a,b'"`` -> ``["0.1", "[1,2]", "'a,b'"]``: commas inside brackets or quotes stay."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            if char == quote and text[i - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def expand_values(text: str, where: str) -> list[Any]:
    """The values one part of a swept entry stands for: ``range(1,4)``, ``linspace(0,1,5)``,
    ``logspace(-4,-1,4)`` (powers of ten) or one Python literal (else the text itself)."""
    match = _EXPANSION.match(text.strip())
    if not match:
        return [parse_value(text)]
    name, args_text = match.groups()
    args = [parse_value(a) for a in split_top_level(args_text)] if args_text.strip() else []
    usage = {"range": "range(START, STOP[, STEP]) with integers", "linspace": "linspace(A, B, N)",
             "logspace": "logspace(A, B, N): N powers of ten from 10**A to 10**B"}[name]
    if not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise CommandLineError(f"{where}: {name}() takes numbers: {usage}")
    if name == "range":
        if not 2 <= len(args) <= 3 or not all(isinstance(a, int) for a in args) or (len(args) == 3 and args[2] == 0):
            raise CommandLineError(f"{where}: write {usage} (STEP not 0), got '{text}'")
        values: list[Any] = list(range(*args))
    else:
        if len(args) != 3 or not isinstance(args[2], int) or args[2] < 1:
            raise CommandLineError(f"{where}: write {usage} with a whole N >= 1, got '{text}'")
        start, stop, n = args
        # The ends are exact; numpy's linspace gives the same values (start + i * step).
        points = [float(start)] if n == 1 else \
            [start + i * (stop - start) / (n - 1) for i in range(n - 1)] + [float(stop)]
        values = [10.0 ** p for p in points] if name == "logspace" else points
    if not values:
        raise CommandLineError(f"{where}: '{text}' gives no values")
    return values


def value_token(key: str, value: Any, replace: bool = False) -> str:
    """The update token that sets ``key`` to ``value`` (checked to read back as the same value)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise CommandLineError(f"{key}: cannot sweep the value {value!r}; use finite numbers")
    text = repr(value)
    if parse_value(text) != value or type(parse_value(text)) is not type(value):
        raise CommandLineError(f"{key}: cannot sweep the value {value!r} ({type(value).__name__}); use "
                               f"numbers, strings, booleans, None, lists or dicts of them")
    return f"{key}{':=' if replace else '='}{text}"


def parse_multirun_tokens(tokens: Sequence[str]) -> Grid:
    """The updates after ``with`` in ``-M`` mode: a top-level comma separates values, named configs sweep
    too (``small,large``), and a sweep file (``sweep.yaml`` with ``grid:``/``list:``) adds its runs."""
    grid = Grid()
    sweep_file = None
    for token in tokens:
        if "=" in token:
            split_update_token(token)  # the same errors as without -M for a bad key; values are split below
            key, _, text = token.partition("=")
            replace = key.endswith(":")
            key = key.removesuffix(":")
            values = [v for part in split_top_level(text) for v in expand_values(part, f"update '{token}'")]
            if len(values) == 1 and not _EXPANSION.match(text.strip()):
                grid.fixed.append(token)  # one value: exactly what the token means without -M
            else:
                grid.axes.append([Choice(key, v, (value_token(key, v, replace),)) for v in values])
        elif is_sweep_file(token):
            if sweep_file is not None:
                raise CommandLineError(f"one sweep file at a time: got '{sweep_file}' and '{token}'")
            sweep_file = token
            file_grid = load_sweep_file(token)
            grid.fixed += file_grid.fixed
            grid.axes += file_grid.axes
            grid.listed = file_grid.listed
        else:
            names = [n.strip() for n in token.split(",")]
            if any(not n for n in names):
                raise CommandLineError(f"'{token}' has an empty named config; write small,large")
            if len(names) == 1:
                grid.fixed.append(token)
            else:
                grid.axes.append([Choice(NAMED_CONFIGS_KEY, n, (n,)) for n in names])
    _refuse_twice_swept(grid)
    return grid


def is_sweep_file(token: str) -> bool:
    """A .yaml/.yml/.json file whose top level is ``grid:`` and/or ``list:`` (else it is a config file)."""
    if not is_config_file_name(token) or not os.path.isfile(token):
        return False
    data = load_config_file(token)
    return bool(data) and set(data) <= set(SWEEP_FILE_KEYS)


def load_sweep_file(path: str) -> Grid:
    """``grid:`` maps entries to lists of values (or a ``range``/``linspace``/``logspace`` text), a single
    value fixes the entry for every run, and ``with: [small, large]`` sweeps named configs; ``list:`` holds
    explicit configs, each one run (combined with every grid point)."""
    data = load_config_file(path)
    grid_part = data.get("grid") or {}
    listed = data.get("list") or []
    if not isinstance(grid_part, dict):
        raise CommandLineError(f"sweep file '{path}': 'grid' must map entries to lists of values")
    if not isinstance(listed, list) or not all(isinstance(e, dict) for e in listed):
        raise CommandLineError(f"sweep file '{path}': 'list' must be a list of configs (key: value mappings)")
    grid = grid_from_mapping(grid_part, f"sweep file '{path}'")
    grid.listed = [_explicit_config(entry, f"sweep file '{path}', list entry {i + 1}")
                   for i, entry in enumerate(listed)]
    return grid


def grid_from_mapping(mapping: Mapping[str, Any], where: str = "sweep") -> Grid:
    """``{"lr": [0.1, 0.01], "model": "svm", "with": ["small", "large"]}``: lists sweep, other values are fixed."""
    grid = Grid()
    for key, spec in mapping.items():
        key = str(key)
        if isinstance(spec, str) and _EXPANSION.match(spec.strip()):
            values = expand_values(spec, f"{where}, entry '{key}'")
        elif isinstance(spec, (list, tuple, range)):
            values = list(spec)
            if not values:
                raise CommandLineError(f"{where}: entry '{key}' has an empty list of values")
        else:
            values = None
        if key == NAMED_CONFIGS_KEY:
            names = [spec] if isinstance(spec, str) else values or []
            if not all(isinstance(n, str) for n in names):
                raise CommandLineError(f"{where}: '{NAMED_CONFIGS_KEY}' takes named config names")
            if len(names) == 1:
                grid.fixed.append(names[0])
            else:
                grid.axes.append([Choice(key, n, (n,)) for n in names])
        elif values is None:
            grid.fixed.append(value_token(key, spec))
        else:
            grid.axes.append([Choice(key, v, (value_token(key, v),)) for v in values])
    _refuse_twice_swept(grid)
    return grid


def _explicit_config(entry: Mapping[str, Any], where: str) -> list[Choice]:
    choices = []
    for key, value in entry.items():
        key = str(key)
        if key == NAMED_CONFIGS_KEY:
            names = [value] if isinstance(value, str) else list(value)
            choices.append(Choice(key, names if len(names) > 1 else names[0], tuple(names)))
        else:
            try:
                choices.append(Choice(key, value, (value_token(key, value),)))
            except CommandLineError as exc:
                raise CommandLineError(f"{where}: {exc}") from None
    return choices


def _refuse_twice_swept(grid: Grid) -> None:
    keys = [axis[0].key for axis in grid.axes]
    twice = sorted({k for k in keys if keys.count(k) > 1 and k != NAMED_CONFIGS_KEY})
    if twice:
        raise CommandLineError(f"'{twice[0]}' is swept twice; give all its values in one entry: "
                               f"{twice[0]}=A,B,C")


def describe(values: Mapping[str, Any]) -> str:
    """``lr=0.1 model=svm with=small`` for progress lines and messages."""
    return " ".join(f"{k}={v}" for k, v in values.items())
