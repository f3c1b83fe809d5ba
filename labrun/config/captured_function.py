"""Captured functions: missing arguments are filled by name from the run's config.

Outside a run a captured function is a plain function. Inside one, explicit arguments win, then config
entries (read-only), then defaults; ``_config``, ``_log``, ``_run``, ``_seed`` and ``_rnd`` are injected.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

import wrapt

from labrun.config.patch import KeyPath, format_path
from labrun.config.view import ReadOnlyDict
from labrun.errors import MissingConfigError, SignatureError
from labrun.randomness import FunctionSeeds, create_rnd

SPECIAL_ARGS = ("_config", "_log", "_run", "_seed", "_rnd")
_FILLABLE = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_EMPTY = ReadOnlyDict()  # the view of an ingredient or prefix that has no config entries


class CaptureState:
    """The state behind one captured function: where its config lives and what the current run gives it."""

    def __init__(self, func: Callable[..., Any], config_path: KeyPath):
        if not callable(func):
            raise SignatureError(f"only functions can be captured, not {type(func).__name__}")
        self.func = func
        self.config_path = config_path
        self.name = getattr(func, "__qualname__", getattr(func, "__name__", repr(func)))
        self._parameters: list[inspect.Parameter] | None = None
        self.config: dict[str, Any] | None = None  # the read-only config view while a run is bound
        self.run: Any = None
        self.logger: logging.Logger | None = None
        self._seeds: FunctionSeeds | None = None

    @property
    def uses_randomness(self) -> bool:
        return any(p.name in ("_seed", "_rnd") for p in self.parameters)

    @property
    def parameters(self) -> list[inspect.Parameter]:
        if self._parameters is None:
            self._parameters = list(inspect.signature(self.func).parameters.values())
        return self._parameters

    def config_keys(self) -> set[str]:
        """Names this function can take from the config."""
        return {p.name for p in self.parameters if p.kind in _FILLABLE and p.name not in SPECIAL_ARGS}

    def bind(self, run: Any, fixture: dict[str, Any], fixture_path: KeyPath, seeds: FunctionSeeds,
             logger: logging.Logger) -> None:
        """Give the function its run: the config view at its path, its logger and its seeds. ``fixture`` is
        the config at ``fixture_path`` (its ingredient's) as its functions see it; a prefix goes below."""
        view: Any = fixture
        for key in self.config_path[len(fixture_path):]:
            view = view.get(key, _EMPTY) if isinstance(view, dict) else None
            if not isinstance(view, dict):
                raise SignatureError(
                    f"{self.name}() reads its config from '{format_path(self.config_path)}', but that entry is "
                    f"not a dict; rename the entry or fix the prefix")
        self.config = view
        self.run = run
        self.logger = logger.getChild(getattr(self.func, "__name__", self.name))
        self._seeds = seeds

    def unbind(self) -> None:
        self.config = self.run = self.logger = self._seeds = None

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        if self.config is None:
            return wrapped(*args, **kwargs)
        params = self.parameters[1:] if instance is not None and not isinstance(instance, type) else self.parameters
        positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                       inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        given = {p.name for p in positional[:len(args)]} | set(kwargs)
        kwargs = dict(kwargs)
        missing = []
        # As in Sacred, a function that takes _seed or _rnd draws one seed per call, given or not.
        seed = self._seeds.next_seed(self) if self.uses_randomness else None  # type: ignore[union-attr]
        for p in params:
            if p.name in given or p.kind not in _FILLABLE:
                continue
            if p.name in SPECIAL_ARGS:
                kwargs[p.name] = self._special(p.name, seed)
            elif p.name in self.config:
                kwargs[p.name] = self.config[p.name]
            elif p.default is inspect.Parameter.empty:
                missing.append(p.name)
        if missing:
            raise MissingConfigError(self.name, missing, self.config.keys())
        return wrapped(*args, **kwargs)

    def _special(self, name: str, seed: int | None) -> Any:
        if name == "_config":
            return self.config
        if name == "_log":
            return self.logger
        if name == "_run":
            return self.run
        if name == "_seed":
            return seed
        return create_rnd(seed)  # type: ignore[arg-type]  # _rnd


def capture(func: Callable[..., Any], config_path: KeyPath) -> tuple[CaptureState, Callable[..., Any]]:
    """Wrap ``func``; the wrapper keeps its name, signature and docstring for introspection and pickling."""
    if isinstance(getattr(func, "_self_capture", None), CaptureState):
        func = func.__wrapped__  # type: ignore[attr-defined]  # captured twice: wrap the original only once
    state = CaptureState(func, config_path)
    wrapper = CapturedFunction(func, state)
    return state, wrapper


class CapturedFunction(wrapt.FunctionWrapper):
    """What ``@ex.capture`` returns: the function, filled from the config when called inside a run."""

    def __init__(self, func: Callable[..., Any], state: CaptureState):
        super().__init__(func, state)
        self._self_capture = state

    @property
    def capture_state(self) -> CaptureState:
        return self._self_capture
