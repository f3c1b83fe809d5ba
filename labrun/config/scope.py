"""Config layers: scope functions whose local variables become entries, and plain dicts or files.

Fixed values (a patch) are in place before a layer runs, so assignments to them are ignored and derived
entries follow them: with ``width`` fixed to 8, ``hidden = 2 * width`` gives 16. A comment on or above an
assignment becomes that entry's doc.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from labrun.config.patch import MISSING, Merge, Node, KeyPath, Replace, apply
from labrun.errors import ConfigError
from labrun._util.suggest import did_you_mean

_NOT_CONFIG_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)


def is_config_entry(name: Any, value: Any) -> bool:
    """Modules, functions, classes and names starting with '_' are helpers of a scope, not config."""
    return not (isinstance(name, str) and name.startswith("_")) and not isinstance(value, _NOT_CONFIG_TYPES)


@dataclass
class LayerResult:
    """What one layer contributed: its entries and what the resolver needs to explain them."""

    entries: dict[str, Any]
    defined: set[KeyPath] = field(default_factory=set)  # paths the layer itself wrote (not the patch)
    originals: dict[KeyPath, Any] = field(default_factory=dict)  # what it wrote where a fixed value won
    docs: dict[KeyPath, str] = field(default_factory=dict)


class FixedDict(dict):
    """A dict whose fixed children win over what a scope writes into it.

    Used as the scope's namespace and for every dict a scope assigns where something below is fixed, so
    that ``opt = {'lr': 0.1}`` followed by ``opt['lr'] = 0.2`` still honours ``opt.lr=0.01``.
    """

    def __init__(self, fixed: Node | None, path: KeyPath, force: bool):
        super().__init__()
        self._fixed = fixed if isinstance(fixed, Merge) else Merge()
        self._path = path
        self._force = force
        self.assigned: dict[Any, None] = {}  # ordered set of keys the scope wrote
        self.originals: dict[KeyPath, Any] = {}

    def __setitem__(self, key: Any, value: Any) -> None:
        self.assigned[key] = None
        child = self._fixed.get(key)
        if child is not None and is_config_entry(key, value):
            value = self._impose(key, value, child)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        """``del x`` in a scope drops the entry it wrote (Sacred's way to use a helper value only)."""
        self.assigned.pop(key, None)
        dict.__delitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def _impose(self, key: Any, value: Any, child: Node) -> Any:
        path = self._path + (key,)
        if isinstance(child, Replace):
            self.originals[path] = value
            return apply(value, child, path)
        if isinstance(value, dict):
            nested = FixedDict(child, path, self._force)
            for k, v in value.items():
                nested[k] = v
            return nested
        for leaf_key in child:
            if isinstance(value, list) and isinstance(leaf_key, int) and 0 <= leaf_key < len(value):
                self.originals[path + (leaf_key,)] = value[leaf_key]
        return apply(value, child, path, self._force)

    def preset(self, key: str, value: Any) -> None:
        """Make an entry readable (with its fixed value applied) without counting it as written here."""
        child = self._fixed.get(key)
        dict.__setitem__(self, key, apply(value, child, self._path + (key,), self._force))

    def provide(self, names: dict[str, Any]) -> None:
        """Make names readable as they are (the scope function's globals and closure), not config."""
        dict.update(self, names)

    def result(self, docs: dict[KeyPath, str] | None = None) -> LayerResult:
        out = LayerResult(entries={}, docs=docs or {})
        self._collect(out, self._path, out.entries, top=True)
        return out

    def _collect(self, out: LayerResult, base: KeyPath, target: dict, top: bool) -> None:
        out.originals.update(self.originals)
        for key in self.assigned:
            value = dict.__getitem__(self, key)
            if top and not is_config_entry(key, value):
                continue
            path = base + (key,)
            out.defined.add(path)
            target[key] = _plain(value, path, out)


def _plain(value: Any, path: KeyPath, out: LayerResult) -> Any:
    """Turn FixedDicts back into plain containers, recording the paths their scope defined."""
    if isinstance(value, FixedDict):
        plain: dict = {}
        value._collect(out, path, plain, top=False)
        return plain
    if isinstance(value, dict):
        plain = {}
        for key, item in value.items():
            out.defined.add(path + (key,))
            plain[key] = _plain(item, path + (key,), out)
        return plain
    return value


class ConfigLayer:
    """One layer of the config stack."""

    name: str

    def evaluate(self, preset: dict[str, Any], fixed: Node | None, path: KeyPath, force: bool,
                 fallback: dict[str, Any] | None = None) -> LayerResult:
        """This layer's entries at ``path``, given the entries before it (``preset``), the fixed values, and
        what a scope's parameters may name besides earlier entries (``fallback``: ``_log`` and the config of
        the ingredient's own ingredients, as in Sacred)."""
        raise NotImplementedError


class ConfigDict(ConfigLayer):
    """A plain dict of entries (``add_config(dict)``, a config file, or a decorated function's defaults)."""

    def __init__(self, values: dict[str, Any], name: str = "dict"):
        if not isinstance(values, dict):
            raise ConfigError(f"config {name} must be a dict, got {type(values).__name__}")
        self.values = values
        self.name = name

    def evaluate(self, preset: dict[str, Any], fixed: Node | None, path: KeyPath, force: bool,
                 fallback: dict[str, Any] | None = None) -> LayerResult:
        namespace = _namespace(preset, fixed, path, force)
        for key, value in self.values.items():
            namespace[key] = value
        return namespace.result()


class ConfigScope(ConfigLayer):
    """A function whose body's local variables become config entries.

    The body runs as module-level code in a namespace that already holds the preset (earlier layers) and
    fixed values, with the function's globals and closure visible.
    """

    def __init__(self, func: Callable[..., Any]):
        self.func = func
        self.name = getattr(func, "__qualname__", getattr(func, "__name__", "config scope"))
        self.__doc__ = func.__doc__
        self._code: types.CodeType | None = None
        self._docs: dict[str, str] = {}

    def _compile(self) -> types.CodeType:
        if self._code is None:
            self._code, self._docs = compile_scope_body(self.func)
        return self._code

    def evaluate(self, preset: dict[str, Any], fixed: Node | None, path: KeyPath, force: bool,
                 fallback: dict[str, Any] | None = None) -> LayerResult:
        code = self._compile()
        visible = dict(self.func.__globals__)
        for name, cell in zip(self.func.__code__.co_freevars, self.func.__closure__ or ()):
            try:
                visible[name] = cell.cell_contents
            except ValueError:  # a closure variable not bound yet
                pass
        namespace = _namespace(preset, fixed, path, force, visible)
        self._fill_parameters(namespace, preset, fixed, fallback or {})
        # One dict as globals and locals, so comprehensions and lambdas in the body see earlier entries.
        exec(code, namespace)
        return namespace.result({path + (k,): doc for k, doc in self._docs.items()})

    def _fill_parameters(self, namespace: FixedDict, preset: dict[str, Any], fixed: Node | None,
                         fallback: dict[str, Any]) -> None:
        """Sacred's scope parameters: each names an earlier entry (already readable by name), ``_log``, or
        an ingredient's config from ``fallback`` (readable, not stored as an entry of this scope)."""
        from labrun.config.view import freeze

        code = self.func.__code__
        for name in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]:
            if name in preset or (isinstance(fixed, Merge) and name in fixed):
                continue
            if name not in fallback:
                known = sorted(set(preset) | set(fallback))
                raise ConfigError(
                    f"config scope {self.name}() takes '{name}', which is neither an earlier config entry nor "
                    f"the config of one of its ingredients{did_you_mean(name, known)}; it can read: "
                    f"{', '.join(known) or 'nothing yet'}")
            namespace.provide({name: freeze(fallback[name]) if isinstance(fallback[name], dict) else
                               fallback[name]})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self.name} is a config scope, not a function: its body is run by the experiment when the "
            f"config is resolved; use ex.run() or print_config to see its entries"
        )


def _namespace(
    preset: dict[str, Any], fixed: Node | None, path: KeyPath, force: bool, visible: dict[str, Any] | None = None
) -> FixedDict:
    namespace = FixedDict(fixed, path, force)
    if visible:
        namespace.provide(visible)
    for key, value in preset.items():
        namespace.preset(key, value)
    if isinstance(fixed, Merge):
        for key, child in fixed.items():
            if isinstance(child, Replace) and key not in preset:
                namespace.preset(key, MISSING)  # MISSING with a Replace applied is the fixed value
    return namespace


def compile_scope_body(func: Callable[..., Any]) -> tuple[types.CodeType, dict[str, str]]:
    """Compile the body of ``func`` as module code (line numbers kept) and read each entry's doc comment."""
    import ast
    import inspect
    import textwrap

    name = getattr(func, "__qualname__", "config scope")
    code = getattr(func, "__code__", None)
    if code is None:
        raise ConfigError(f"config scope {name!r} must be a plain function")
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        raise ConfigError(
            f"config scope {name}() takes *args or **kwargs; name the entries it reads as parameters "
            f"(or read earlier entries by name without parameters)"
        )
    try:
        lines, first_line = inspect.getsourcelines(func)
    except (OSError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the source of config scope {name}() ({exc}); define config scopes in a file, or "
            f"use ex.add_config(dict) in interactive sessions"
        ) from None
    source = textwrap.dedent("".join(lines))
    tree = ast.parse(source)
    func_def = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    body = list(func_def.body)
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        body = body[1:]  # the scope's docstring
    module = ast.Module(body=body or [ast.Pass()], type_ignores=[])
    ast.increment_lineno(module, first_line - 1)
    docs = _entry_docs(source, body, first_line - 1)
    return compile(module, code.co_filename, "exec"), docs


def _entry_docs(source: str, body: Iterable[Any], line_offset: int) -> dict[str, str]:
    """Map each assigned name to the comment on its line, or the comment lines directly above it."""
    import ast
    import io
    import re
    import tokenize

    from labrun.settings import SETTINGS

    ignored = [re.compile(pattern) for pattern in SETTINGS.CONFIG.IGNORED_COMMENTS]
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                text = tok.string.lstrip("#").strip()
                if not any(pattern.search(text) for pattern in ignored):
                    comments[tok.start[0]] = text
            elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                code_lines.add(tok.start[0])
    except tokenize.TokenError:
        return {}
    docs: dict[str, str] = {}
    for stmt in body:
        targets: list[Any] = []
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
            targets = [stmt.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not names:
            continue
        first, last = stmt.lineno - line_offset, (stmt.end_lineno or stmt.lineno) - line_offset
        doc = comments.get(last) if last in code_lines else None
        if doc is None:
            above: list[str] = []
            line = first - 1
            while line in comments and line not in code_lines:
                above.insert(0, comments[line])
                line -= 1
            doc = " ".join(above) or None
        if doc:
            for n in names:
                docs[n] = doc
    return docs

