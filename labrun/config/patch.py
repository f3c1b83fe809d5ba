"""Fixed values as a tree: what the command line, named configs and hooks impose on the config.

A patch is a tree of nodes. ``Replace(value)`` fixes the whole value at its path; ``Merge`` maps keys (str for
dict entries, int for list elements) to child nodes and is merged into whatever value the scopes give that
path. ``a.b=1`` is ``Merge(a=Merge(b=Replace(1)))``; ``a={'k': 1}`` merges into the dict ``a`` like Sacred;
``a:={'k': 1}`` is ``Merge(a=Replace({'k': 1}))`` and replaces it.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Union

from labrun.errors import ConfigError

PathKey = Union[str, int]
KeyPath = tuple  # of PathKey: a place in the config, ("optimizer", "lr") or ("layers", 0) (not a file path)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Replace:
    """A leaf: the value at this path is fixed to ``value`` whatever the scopes assign."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return f"Replace({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Replace) and other.value == self.value


class Merge(dict):
    """An inner node: each child is merged into the existing value at its key."""

    def __repr__(self) -> str:
        return f"Merge({dict.__repr__(self)})"


Node = Union[Replace, Merge]


def format_path(path: KeyPath) -> str:
    """('a', 'b', 0) -> 'a.b.0', the spelling users type on the command line."""
    return ".".join(str(p) for p in path)


def from_value(value: Any) -> Node:
    """A node fixing ``value``; dicts become Merge nodes so they merge into the scopes' dicts (Sacred's rule)."""
    if isinstance(value, dict):
        return Merge({k: from_value(v) for k, v in value.items()})
    return Replace(value)


def from_assignments(assignments: list[tuple[KeyPath, Node]]) -> Merge:
    """Build one patch from (path, node) pairs; later pairs win where they overlap."""
    root = Merge()
    for path, node in assignments:
        merged = merge(root, at_path(path, node))
        assert isinstance(merged, Merge)  # two Merges merge into a Merge
        root = merged
    return root


def at_path(path: KeyPath, node: Node) -> Merge:
    """Wrap ``node`` in Merge nodes so that it sits at ``path`` (non-empty)."""
    for key in reversed(path):
        node = Merge({key: node})
    assert isinstance(node, Merge)
    return node


def merge(low: Node | None, high: Node | None) -> Node | None:
    """Combine two patches; ``high`` wins wherever both fix something."""
    if low is None:
        return high
    if high is None:
        return low
    if isinstance(high, Replace):
        return high
    if isinstance(low, Replace):
        return Replace(apply(copy.deepcopy(low.value), high, ()))
    out = Merge(low)
    for key, child in high.items():
        out[key] = merge(low.get(key), child)
    return out


def subpatch(node: Node | None, path: KeyPath) -> Node | None:
    """The node at ``path`` below ``node`` (None where nothing is fixed there)."""
    for key in path:
        if not isinstance(node, Merge):
            return None
        node = node.get(key)
    return node


def apply(value: Any, node: Node | None, path: KeyPath, force: bool = False) -> Any:
    """``value`` with ``node`` applied; containers are copied, never changed in place."""
    if node is None:
        return value
    if isinstance(node, Replace):
        return copy.deepcopy(node.value)
    if isinstance(value, list):
        out_list = list(value)
        for key, child in node.items():
            if not isinstance(key, int):
                if force:
                    return apply(MISSING, node, path, force)
                raise ConfigError(
                    f"cannot set '{format_path(path + (key,))}': '{format_path(path)}' is a list; "
                    f"address its elements by position, e.g. '{format_path(path + (0,))}'"
                )
            if not 0 <= key < len(out_list):
                raise ConfigError(
                    f"cannot set '{format_path(path + (key,))}': '{format_path(path)}' has {len(out_list)} "
                    f"element{'s' if len(out_list) != 1 else ''} (positions 0 to {len(out_list) - 1})"
                )
            out_list[key] = apply(out_list[key], child, path + (key,), force)
        return out_list
    if value is MISSING or isinstance(value, dict) or force:
        out = dict(value) if isinstance(value, dict) else {}
        for key, child in node.items():
            if isinstance(key, int) and isinstance(value, dict):
                key = str(key)  # 'a.0' addresses the key "0" of a dict
            elif isinstance(key, int):
                if not force:
                    raise ConfigError(
                        f"cannot set '{format_path(path + (key,))}': there is no list at "
                        f"'{format_path(path)}' to index; set the whole value instead, e.g. "
                        f"'{format_path(path)}=[...]'"
                    )
                key = str(key)
            out[key] = apply(out.get(key, MISSING), child, path + (key,), force)
        return out
    raise ConfigError(
        f"cannot set '{format_path(path + (next(iter(node)),))}': '{format_path(path)}' is "
        f"{value!r}, not a dict; set '{format_path(path)}' itself, or pass -f/--force to replace it"
    )


def leaves(node: Node | None, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Replace]]:
    """Every fixed leaf with its full path."""
    if node is None:
        return
    if isinstance(node, Replace):
        yield path, node
        return
    for key, child in node.items():
        yield from leaves(child, path + (key,))


def to_nested(node: Node | None) -> Any:
    """The plain nested-dict form of a patch, as Sacred records ``meta.config_updates``."""
    if node is None:
        return {}
    if isinstance(node, Replace):
        return node.value
    return {str(key): to_nested(child) for key, child in node.items()}


def split_key(key: str) -> KeyPath:
    """'a.b.0' -> ('a', 'b', 0): digits address list elements."""
    return tuple(int(part) if part.isdigit() else part for part in key.split("."))
