"""Ingredients: reusable parts of an experiment with their own config subtree, captured functions and commands.

An Experiment is the root ingredient (path ``()``); an ``Ingredient('dataset')`` owns ``config['dataset']``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar, overload

from labrun.config.captured_function import CaptureState, capture
from labrun.config.files import load_config_file
from labrun.config.patch import KeyPath
from labrun.config.scope import ConfigDict, ConfigLayer, ConfigScope
from labrun.config.values import check_key
from labrun.errors import CircularDependencyError, ConfigError


F = TypeVar("F", bound=Callable[..., Any])  # a decorated function: captured, it keeps its signature


@dataclass
class Command:
    """A function runnable from the command line."""

    name: str
    function: Callable[..., Any]
    unobserved: bool = False
    builtin: bool = False


def caller_doc(depth: int) -> str | None:
    """The docstring of the module ``depth`` frames above the caller (Sacred shows it first in --help)."""
    return sys._getframe(depth + 1).f_globals.get("__doc__")


def caller_file(depth: int) -> str | None:
    """The file of the code ``depth`` frames above the caller, or None in interactive sessions."""
    frame = sys._getframe(depth + 1)
    filename = frame.f_code.co_filename
    if filename.startswith("<") or not os.path.exists(filename):
        return None
    return os.path.abspath(filename)


class Ingredient:
    """A named part of an experiment (Sacred's ``Ingredient``)."""

    def __init__(self, path: str, ingredients: Sequence["Ingredient"] = (), *, interactive: bool = False,
                 base_dir: str | None = None, save_git_info: bool = True, _caller_depth: int = 1):
        """Sacred's arguments: ``interactive`` is accepted (labrun runs in notebooks and REPLs without it),
        ``base_dir`` is where source files are looked for, ``save_git_info`` False records no git state."""
        if path:
            for part in path.split("."):
                check_key(part, ())
        self.path = path
        self.config_path: KeyPath = tuple(path.split(".")) if path else ()
        self.ingredients = list(ingredients)
        for ing in self.ingredients:
            if not isinstance(ing, Ingredient):
                raise ConfigError(f"ingredients must be Ingredient objects, got {type(ing).__name__}")
        self.config_layers: list[ConfigLayer] = []
        self.named_configs: dict[str, ConfigLayer] = {}
        self.config_hooks: list[Callable[..., Any]] = []
        self.captured_functions: list[CaptureState] = []
        self.commands: dict[str, Command] = {}
        self.pre_run_hooks: list[Callable[..., Any]] = []
        self.post_run_hooks: list[Callable[..., Any]] = []
        self.mainfile = caller_file(_caller_depth)
        self.doc = caller_doc(_caller_depth)
        self.base_dir = os.path.dirname(self.mainfile) if self.mainfile else os.getcwd()
        if base_dir is not None:
            self.base_dir = os.path.abspath(base_dir)
        self.save_git_info = save_git_info
        self.package_dependencies: list[tuple[str, str]] = []  # add_package_dependency
        self.sources: list[str] = []

    # -- config -------------------------------------------------------------------------------------------
    def config(self, function: Callable[..., Any]) -> ConfigScope:
        """Decorator: the function's local variables become config entries (a config scope)."""
        scope = ConfigScope(function)
        self.config_layers.append(scope)
        return scope

    def named_config(self, function: Callable[..., Any]) -> ConfigScope:
        """Decorator: a config scope applied only when named (``with NAME``); it may read the normal config."""
        scope = ConfigScope(function)
        self._add_named(function.__name__, scope)
        return scope

    def add_config(self, cfg_or_file: dict[str, Any] | str | None = None, **kw_conf: Any) -> None:
        """Add a dict, a .json/.yaml file (relative to the experiment's folder if not found), or keywords."""
        if cfg_or_file is not None and kw_conf:
            raise ConfigError("add_config takes a dict or file, or keyword entries, not both")
        if cfg_or_file is None:
            self.config_layers.append(ConfigDict(kw_conf, name="add_config(...)"))
        else:
            self.config_layers.append(self._load(cfg_or_file))

    def add_named_config(self, name: str, cfg_or_file: dict[str, Any] | str) -> None:
        """A named config from a dict or a config file."""
        self._add_named(name, self._load(cfg_or_file))

    def config_hook(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: ``hook(config, command_name, logger) -> dict`` of updates, applied above the scopes."""
        self.config_hooks.append(function)
        return function

    def _add_named(self, name: str, layer: ConfigLayer) -> None:
        if name in self.named_configs:
            raise ConfigError(f"named config '{name}' is defined twice in '{self.path or 'the experiment'}'")
        self.named_configs[name] = layer

    def _load(self, cfg_or_file: dict[str, Any] | str) -> ConfigDict:
        if isinstance(cfg_or_file, dict):
            return ConfigDict(cfg_or_file)
        if not isinstance(cfg_or_file, (str, os.PathLike)):
            raise ConfigError(f"expected a dict or a config file path, got {type(cfg_or_file).__name__}")
        path = os.fspath(cfg_or_file)
        if not os.path.exists(path) and not os.path.isabs(path):
            beside = os.path.join(self.base_dir, path)
            path = beside if os.path.exists(beside) else path
        return ConfigDict(load_config_file(path), name=path)

    # -- functions ------------------------------------------------------------------------------------------
    @overload
    def capture(self, function: F, prefix: str | None = None) -> F: ...

    @overload
    def capture(self, function: None = None, prefix: str | None = None) -> Callable[[F], F]: ...

    def capture(self, function: Callable[..., Any] | None = None, prefix: str | None = None) -> Any:
        """Decorator (bare or with ``prefix='optimizer'``): fill missing arguments from the config."""
        if function is None:
            return lambda f: self.capture(f, prefix=prefix)
        path = self.config_path + (tuple(prefix.split(".")) if prefix else ())
        state, wrapper = capture(function, path)
        self.captured_functions.append(state)
        return wrapper

    @overload
    def command(self, function: F, *, unobserved: bool = False, prefix: str | None = None) -> F: ...

    @overload
    def command(self, function: None = None, *, unobserved: bool = False,
                prefix: str | None = None) -> Callable[[F], F]: ...

    def command(self, function: Callable[..., Any] | None = None, *, unobserved: bool = False,
                prefix: str | None = None) -> Any:
        """Decorator: make a captured function runnable as ``python exp.py NAME``."""
        if function is None:
            return lambda f: self.command(f, unobserved=unobserved, prefix=prefix)
        captured = self.capture(function, prefix=prefix)
        self.commands[function.__name__] = Command(function.__name__, captured, unobserved=unobserved)
        return captured

    def pre_run_hook(self, function: Callable[..., Any] | None = None, prefix: str | None = None) -> Any:
        """Decorator: a captured function run before the main function (after the config is fixed)."""
        return self._run_hook(self.pre_run_hooks, function, prefix)

    def post_run_hook(self, function: Callable[..., Any] | None = None, prefix: str | None = None) -> Any:
        """Decorator: a captured function run after the main function returned."""
        return self._run_hook(self.post_run_hooks, function, prefix)

    def _run_hook(self, hooks: list, function: Callable[..., Any] | None, prefix: str | None) -> Any:
        if function is None:
            return lambda f: self._run_hook(hooks, f, prefix)
        captured = self.capture(function, prefix=prefix)
        hooks.append(captured)
        return captured

    def add_source_file(self, filename: str) -> None:
        """Record this file with every run's sources, besides the ones found automatically."""
        path = os.path.abspath(filename)
        if not os.path.isfile(path):
            raise ConfigError(f"source file '{filename}' does not exist")
        if path not in self.sources:
            self.sources.append(path)

    # -- queries --------------------------------------------------------------------------------------------
    def accepted_keys(self) -> dict[KeyPath, set[str]]:
        """Config keys that captured functions take, by the config path they read from."""
        accepted: dict[KeyPath, set[str]] = {}
        for state in self.captured_functions:
            accepted.setdefault(state.config_path, set()).update(state.config_keys())
        return accepted

    def traverse(self) -> list["Ingredient"]:
        """This ingredient and all below it, dependencies first, each once."""
        seen: dict[int, Ingredient] = {}
        paths: dict[KeyPath, Ingredient] = {}

        def visit(ing: Ingredient, chain: tuple) -> None:
            if id(ing) in seen:
                return
            if ing in chain:
                raise CircularDependencyError(f"ingredient '{ing.path}' contains itself")
            for sub in ing.ingredients:
                visit(sub, chain + (ing,))
            other = paths.get(ing.config_path)
            if other is not None and other is not ing:
                raise ConfigError(f"two different ingredients use the path '{ing.path}'; give each its own path")
            seen[id(ing)] = ing
            paths[ing.config_path] = ing

        visit(self, ())
        return list(seen.values())

    def add_package_dependency(self, package_name: str, version: str) -> None:
        """Record ``package_name==version`` among the run's dependencies (for packages found no other way)."""
        import re

        if not re.fullmatch(r"[\w.+-]+", version):
            raise ValueError(f"invalid version {version!r} for package {package_name!r}")
        self.package_dependencies.append((package_name, version))

    def all_commands(self) -> dict[str, Command]:
        """Commands of this ingredient and, qualified by path (``dataset.stats``), of those below it."""
        out = {}
        for ing in self.traverse():
            for name, cmd in ing.commands.items():
                out[f"{ing.path}.{name}" if ing.path and ing is not self else name] = cmd
        return out
