"""Resolving the config stack into one config, with what changed and why.

Precedence, lowest to highest: decorator defaults < scopes, dicts and files in declaration order < config
hooks < named configs (left to right) < explicit updates. Every value above the scopes is *fixed* before
the scopes run again, so derived entries follow it. Named configs are evaluated against the config the
scopes computed, so they may read it (Sacred evaluates them first, blind).
"""

from __future__ import annotations

import copy
import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence

from labrun._util.suggest import did_you_mean
from labrun.config import patch
from labrun.config.files import is_config_file_name, load_config_file
from labrun.config.patch import Merge, Node, KeyPath, format_path
from labrun.config.scope import ConfigDict, ConfigLayer, LayerResult
from labrun.config.values import same_kind, to_jsonable
from labrun.errors import ConfigAddedError, ConfigError, NamedConfigNotFoundError

SEED_KEY = "seed"
SEED_DOC = "the master seed of all random number generators"
MAX_SEED = 2**31 - 1  # numpy's legacy seeding takes 32 bits; stay well inside


class ConfigSource(Protocol):
    """What the resolver needs of an Experiment or Ingredient."""

    config_path: KeyPath
    ingredients: list[Any]
    config_layers: list[ConfigLayer]
    named_configs: dict[str, ConfigLayer]
    config_hooks: list[Callable[..., Any]]

    def accepted_keys(self) -> dict[KeyPath, set[str]]: ...


@dataclass
class ResolvedConfig:
    """The final config and how it came about (for print_config and the run record)."""

    config: dict[str, Any]
    added: set[KeyPath] = field(default_factory=set)
    modified: set[KeyPath] = field(default_factory=set)
    typechanged: dict[KeyPath, tuple[str, str]] = field(default_factory=dict)
    docs: dict[KeyPath, str] = field(default_factory=dict)
    seed_generated: bool = False  # no layer or update set the seed: it was drawn at random


def random_seed() -> int:
    return random.SystemRandom().randint(0, MAX_SEED)


def resolve(
    sources: Sequence[ConfigSource],
    updates: Merge | None = None,
    named_configs: Sequence[str] = (),
    command_name: str | None = None,
    force: bool = False,
    logger: logging.Logger | None = None,
) -> ResolvedConfig:
    """Evaluate every layer of ``sources`` (ingredients first, the experiment last) under the fixed values."""
    logger = logger or logging.getLogger("labrun")
    explicit: Node | None = updates or None
    config, info = _evaluate(sources, explicit, force, logger)

    named: Node | None = None
    set_by: dict[KeyPath, str] = {}  # which named config fixed each path (for the error that names it)
    for token in named_configs:
        layer, path = find_named_config(sources, token)
        preset = _subtree(config, path)
        owner = next((source for source in sources if source.config_path == path), None)
        fallback = _fallback(owner, config, logger) if owner is not None else {"_log": logger}
        result = layer.evaluate(preset, patch.subpatch(explicit, path), path, force, fallback)
        contribution = patch.from_value(result.entries)
        set_by.update({path + leaf: token for leaf, _ in patch.leaves(contribution)})
        named = patch.merge(named, patch.at_path(path, contribution) if path else contribution)
        config, info = _evaluate(sources, patch.merge(named, explicit), force, logger)

    user_fixed = patch.merge(named, explicit)
    hooked: Node | None = None
    for_hooks = None
    for source in sources:
        for hook in source.config_hooks:
            if for_hooks is None:
                for_hooks = patch.apply(config, user_fixed, (), force)
            # Sacred's contract: each hook gets its own copy, may change it, and returns updates or the
            # whole changed config (both are applied as updates).
            out = hook(copy.deepcopy(for_hooks), command_name, logger)
            if out is None:
                continue
            if not isinstance(out, dict):
                raise ConfigError(
                    f"config hook {getattr(hook, '__qualname__', hook)} returned a {type(out).__name__}; "
                    f"a config hook returns a dict of config updates (or None)"
                )
            hooked = patch.merge(hooked, patch.from_value(out))
    fixed = patch.merge(hooked, user_fixed)
    if hooked is not None:
        config, info = _evaluate(sources, fixed, force, logger)

    config = patch.apply(config, fixed, (), force)
    seed_generated = SEED_KEY not in config
    if seed_generated:
        config[SEED_KEY] = random_seed()
    info.docs.setdefault((SEED_KEY,), SEED_DOC)
    config = to_jsonable(config, force=force)

    resolved = ResolvedConfig(config=config, docs=info.docs, seed_generated=seed_generated)
    accepted = _accepted_keys(sources)
    for path, _leaf in patch.leaves(fixed):
        defined_path = _until_index(path)
        if defined_path not in info.defined and defined_path != (SEED_KEY,):
            if not any(path[:len(p)] == p and len(path) == len(p) + 1 and path[-1] in names
                       for p, names in accepted.items()):
                resolved.added.add(defined_path)
    _explain_changes(resolved, info.originals)
    user_added = sorted(format_path(p) for p in resolved.added
                        if any(leaf[:len(p)] == p for leaf, _ in patch.leaves(user_fixed))
                        and not _inside_entry(p, info.defined))
    for path in sorted(resolved.added):
        if _inside_entry(path, info.defined):  # a new key in an existing dict entry: Sacred's warning
            siblings = [format_path(p) for p in info.defined if len(p) == len(path) and p[:-1] == path[:-1]]
            hint = did_you_mean(format_path(path), siblings)
            logger.warning('Added new config entry: "%s"%s', format_path(path), hint)
    if user_added and not force:
        known = [format_path(p) for p in info.defined]
        known += [format_path(p + (name,)) for p, names in accepted.items() for name in names]
        explicit_leaves = {leaf for leaf, _ in patch.leaves(explicit)} if explicit is not None else set()
        origins = {format_path(p): token for p, token in set_by.items() if p not in explicit_leaves}
        raise ConfigAddedError(user_added, known, origins)
    if not force:
        explicit_paths = {path for path, _leaf in patch.leaves(explicit)} if explicit is not None else set()
        for path, (old, new) in sorted(resolved.typechanged.items()):
            if path in explicit_paths:  # typed by the user now: stop before the run, not deep inside it
                value, name = _get(resolved.config, path), format_path(path)
                fix = (f"write it in quotes to mean the text: {name}=\"'{value}'\"" if old == "str" else
                       f"write {_a(old)} {old}")
                if new == "list":  # lr=0.1,0.01 is Sacred's tuple: most likely a sweep without -M
                    fix += f" (to run one run per value, add -M: -M with {name}=...,...)"
                raise ConfigError(f"the update {name}={value!r} gives the {old} entry '{name}' {_a(new)} {new}; "
                                  f"{fix}, or pass -f/--force to store {_a(new)} {new} anyway")
            logger.warning(
                "config entry '%s' changed type from %s to %s; if that is a typo, write the value as a %s "
                "(pass -f/--force to silence this)", format_path(path), old, new, old)
    return resolved


def _evaluate(sources: Sequence[ConfigSource], fixed: Node | None, force: bool,
              logger: logging.Logger) -> tuple[dict, LayerResult]:
    config: dict[str, Any] = {}
    info = LayerResult(entries=config)
    for source in sources:  # ingredients before those that hold them
        for layer in source.config_layers:
            preset = _subtree(config, source.config_path)
            result = layer.evaluate(preset, patch.subpatch(fixed, source.config_path), source.config_path, force,
                                    _fallback(source, config, logger))
            _deep_merge(_subtree(config, source.config_path, create=True), result.entries)
            info.defined |= result.defined
            info.originals.update(result.originals)
            info.docs.update(result.docs)
    return config, info


def ingredient_views(source: ConfigSource, config: dict) -> dict[str, Any]:
    """The config of ``source``'s own ingredients, as Sacred shows them to its scopes and captured functions:
    one below ``source``'s path at its relative path (``paths`` for ``dataset.paths`` in ``dataset``), any
    other at its full path (``settings``)."""
    views: dict[str, Any] = {}
    for sub in sorted(source.ingredients, key=lambda s: len(s.config_path)):
        path = sub.config_path
        if source.config_path and path[:len(source.config_path)] == source.config_path:
            path = path[len(source.config_path):]
        node = views
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if type(node) is not dict:  # inside an ingredient's config already shown: it holds this one
                break
        else:
            node[path[-1]] = _subtree(config, sub.config_path)
    return views


def ingredient_fixture(source: ConfigSource, config: dict) -> dict[str, Any]:
    """The read-only config that ``source``'s captured functions see: its own entries, with its ingredients'
    config beside them (``ingredient_views``)."""
    from labrun.config.view import ReadOnlyDict, freeze

    own = _get(config, source.config_path)
    if not isinstance(own, dict):
        own = ReadOnlyDict()
    views = ingredient_views(source, config)
    if not views:
        return own
    return ReadOnlyDict({**freeze(views), **own})


def _fallback(source: ConfigSource, config: dict, logger: logging.Logger) -> dict[str, Any]:
    return {"_log": logger, **ingredient_views(source, config)}


def _subtree(config: dict, path: KeyPath, create: bool = False) -> dict:
    node = config
    for i, key in enumerate(path):
        child = node.get(key)
        if child is None:
            child = {}
            if create:
                node[key] = child
        elif not isinstance(child, dict):
            raise ConfigError(
                f"the config of ingredient '{format_path(path)}' collides with the entry "
                f"'{format_path(path[:i + 1])}' = {child!r}; rename one of them"
            )
        node = child
    return node


def _deep_merge(base: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _inside_entry(path: KeyPath, defined: set[KeyPath]) -> bool:
    """Whether ``path`` lies inside an entry that a layer defined (``a.c`` when ``a`` is a dict entry)."""
    return any(path[:i] in defined for i in range(1, len(path)))


def _until_index(path: KeyPath) -> KeyPath:
    """'a.0.b' is defined when the list 'a' is: list elements are not entries of their own."""
    for i, key in enumerate(path):
        if isinstance(key, int):
            return path[:i]
    return path


def _get(config: Any, path: KeyPath) -> Any:
    for key in path:
        if isinstance(config, dict) and key in config:
            config = config[key]
        elif isinstance(config, list) and isinstance(key, int) and 0 <= key < len(config):
            config = config[key]
        else:
            return patch.MISSING
    return config


def _explain_changes(resolved: ResolvedConfig, originals: dict[KeyPath, Any]) -> None:
    for path, old in originals.items():
        new = _get(resolved.config, path)
        if new is patch.MISSING:
            continue
        old = to_jsonable(old, force=True)
        if old != new:
            resolved.modified.add(path)
            if not same_kind(old, new):
                resolved.typechanged[path] = (type(old).__name__, type(new).__name__)


def _accepted_keys(sources: Iterable[ConfigSource]) -> dict[KeyPath, set[str]]:
    accepted: dict[KeyPath, set[str]] = {}
    for source in sources:
        for path, names in source.accepted_keys().items():
            accepted.setdefault(path, set()).update(names)
    return accepted


def named_config_names(sources: Iterable[ConfigSource]) -> list[str]:
    """Every named config, ingredients' ones qualified by their path (``dataset.small``)."""
    names = []
    for source in sources:
        prefix = format_path(source.config_path) + "." if source.config_path else ""
        names += [prefix + name for name in source.named_configs]
    return names


def find_named_config(sources: Sequence[ConfigSource], token: str) -> tuple[ConfigLayer, KeyPath]:
    """The layer a command-line token names: a named config (``small``, ``dataset.small``) or a config file."""
    for source in sources:
        prefix = format_path(source.config_path)
        if not source.config_path and token in source.named_configs:
            return source.named_configs[token], ()
        if source.config_path and token.startswith(prefix + ".") and token[len(prefix) + 1:] in source.named_configs:
            return source.named_configs[token[len(prefix) + 1:]], source.config_path
    if is_config_file_name(token):
        if os.path.exists(token):
            return ConfigDict(load_config_file(token), name=token), ()
        raise ConfigError(f"config file '{token}' does not exist (looked in {os.getcwd()})")
    raise NamedConfigNotFoundError(token, named_config_names(sources))
