"""Built-in commands: print_config, save_config, print_named_configs, print_dependencies and print_env.

Each takes the experiment, the (unobserved) run and the command-line arguments after the command name.
"""

from __future__ import annotations

import sys
from typing import Any

from labrun.config.files import save_config_file
from labrun.config.patch import KeyPath
from labrun.config.resolve import ResolvedConfig, named_config_names
from labrun.errors import CommandLineError
from labrun._util.table import use_color

_COLORS = {"added": "\033[32m", "modified": "\033[34m", "typechanged": "\033[31m", "doc": "\033[2m"}
_RESET = "\033[0m"


def format_config(resolved: ResolvedConfig, color: bool) -> str:
    """The config as an indented listing; entries marked as added, modified or type-changed, docs shown."""
    def paint(text: str, kind: str) -> str:
        return f"{_COLORS[kind]}{text}{_RESET}" if color else text

    legend = ", ".join(paint(k, k) for k in ("modified", "added", "typechanged", "doc")) if color else \
        "entries marked [modified], [added] or [typechanged: old -> new]; '#' starts an entry's doc"
    lines = [f"Configuration ({legend}):"]

    def mark(path: KeyPath) -> tuple[str | None, str]:
        if path in resolved.typechanged:
            old, new = resolved.typechanged[path]
            return "typechanged", f" [typechanged: {old} -> {new}]"
        if path in resolved.added:
            return "added", " [added]"
        if path in resolved.modified:
            return "modified", " [modified]"
        return None, ""

    def walk(node: dict, path: KeyPath, indent: int) -> None:
        for key, value in node.items():
            sub = path + (key,)
            kind, tag = mark(sub)
            if isinstance(value, dict) and value:
                plain = f"{'  ' * indent}{key}:"
            else:
                plain = f"{'  ' * indent}{key} = {value!r}"
            if not color:
                plain += tag
            text = paint(plain, kind) if kind and color else plain
            doc = resolved.docs.get(sub)
            if doc:
                text += " " * max(1, 40 - len(plain)) + paint(f"# {doc}", "doc")
            lines.append(text)
            if isinstance(value, dict) and value:
                walk(value, sub, indent + 1)

    walk(resolved.config, (), 1)
    return "\n".join(lines)


def print_config(experiment: Any, run: Any, *args: str) -> None:
    """Print the config this command line would run with, and what the updates changed."""
    _no_args("print_config", args)
    print(format_config(run.config_modifications, use_color(sys.stdout)))


def save_config(experiment: Any, run: Any, *args: str) -> None:
    """Save the config to PATH (.json, .yaml or .yml; default config.json; Sacred's ``with
    config_filename=PATH`` works too)."""
    if len(args) > 1:
        raise CommandLineError(f"save_config takes one PATH, got {' '.join(args)}")
    path = args[0] if args else "config.json"
    save_config_file(run.config_modifications.config, path)
    print(f"Saved the config to {path}")


def print_named_configs(experiment: Any, run: Any, *args: str) -> None:
    """List the named configs (use one with 'with NAME')."""
    _no_args("print_named_configs", args)
    sources = experiment.traverse()
    names = named_config_names(sources)
    docs = {}
    for source in sources:
        prefix = f"{source.path}." if source.path else ""
        for name, layer in source.named_configs.items():
            doc = (getattr(layer, "__doc__", None) or "").strip().splitlines()
            docs[prefix + name] = doc[0] if doc else ""
    if not names:
        print("No named configs. Define one with @ex.named_config or ex.add_named_config(name, dict_or_file).")
        return
    print("Named configurations (use them with 'with NAME'):")
    for name in names:
        print(f"  {name:<30} {'# ' + docs[name] if docs[name] else ''}".rstrip())


def print_dependencies(experiment: Any, run: Any, *args: str) -> None:
    """Print the sources, git state and imported packages a run would record."""
    _no_args("print_dependencies", args)
    found = experiment.provenance()
    print("Dependencies:")
    for dependency in found["dependencies"]:
        print(f"  {dependency}")
    print("\nSources:")
    for source in found["sources"]:
        print(f"  {source['path']:<50} {source['md5']}")
    print("\nGit:")
    if not found["repositories"]:
        print("  (not in a git repository)")
    for repo in found["repositories"]:
        state = "dirty" if repo["dirty"] else "clean" if repo["dirty"] is False else "unknown (no git binary)"
        print(f"  {repo['path']}: {repo['commit'] or '(no commit yet)'} on {repo['branch'] or '(detached HEAD)'}, "
              f"{state}{', remote ' + repo['url'] if repo['url'] else ''}")
        if repo.get("capped"):
            print(f"    changes over {repo['capped']['cap_bytes']} bytes: not all stored")


def print_env(experiment: Any, run: Any, *args: str) -> None:
    """Print the Python environment and host a run would record."""
    import json

    _no_args("print_env", args)
    found = experiment.provenance()
    print(json.dumps({"environment": found["environment"], "host": found["host"]}, indent=2))


def _no_args(command: str, args: tuple) -> None:
    if args:
        raise CommandLineError(f"{command} takes no arguments, got {' '.join(args)}; put updates after 'with'")


BUILTIN_COMMANDS = {
    "print_config": print_config,
    "save_config": save_config,
    "print_named_configs": print_named_configs,
    "print_dependencies": print_dependencies,
    "print_env": print_env,
}
