"""Seeds and random generators, derived from the run's master seed exactly as Sacred derives them, so a
result that depends on ``_seed`` or ``_rnd`` stays the same after switching from Sacred (``sacred.randomness``
has the same names: ``get_seed``, ``create_rnd``, ``set_global_seed``).
"""

from __future__ import annotations

import importlib.util
import random
import sys
from typing import Any, Iterable, Protocol

SEED_RANGE = (1, 10**9)  # Sacred's: every derived seed is drawn from [1, 1e9]
# Sacred's Experiment captures print_config, print_dependencies, save_config and print_named_configs before
# any user function; each takes a seed from the experiment's generator, so the user's functions start after.
SACRED_BUILTIN_COMMANDS = 4


def create_rnd(seed: int) -> Any:
    """A generator seeded with ``seed``: numpy's ``default_rng`` when numpy is installed (imported only
    now), else ``random.Random``, as Sacred does with numpy 1.19 or later."""
    if importlib.util.find_spec("numpy") is not None:
        import numpy

        from labrun.settings import SETTINGS

        if SETTINGS.CONFIG.NUMPY_RANDOM_LEGACY_API:
            return numpy.random.RandomState(seed)
        return numpy.random.default_rng(seed)
    return random.Random(seed)


def get_seed(rnd: Any = None) -> int:
    """A new seed drawn from ``rnd`` (from ``random`` when None)."""
    if rnd is None:
        return random.randint(*SEED_RANGE)
    if hasattr(rnd, "integers"):
        return int(rnd.integers(*SEED_RANGE, dtype=int))
    return int(rnd.randint(*SEED_RANGE))


def set_global_seed(seed: int) -> list[str]:
    """Seed random, and numpy and torch when the script already imported them (never import them here)."""
    seeded = ["random"]
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)
        seeded.append("numpy")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        seeded.append("torch")
    return seeded


class _IngredientLike(Protocol):
    path: str
    ingredients: list[Any]
    captured_functions: list[Any]


def _is_prefix(prefix: str, path: str) -> bool:
    return not prefix or path.startswith(prefix + ".")


class FunctionSeeds:
    """Each captured function's own generator, from which every call that takes ``_seed`` or ``_rnd`` draws
    its seed. Derived as Sacred derives them (from the master seed, each ingredient's seed, then each of its
    captured functions in the order they were captured), and only when a function first asks, so runs whose
    code never takes ``_seed`` or ``_rnd`` pay nothing (no numpy import)."""

    def __init__(self, root: _IngredientLike, ingredients: Iterable[_IngredientLike], seed: int):
        self._root, self._ingredients, self._seed = root, list(ingredients), seed
        self._by_function: dict[int, Any] | None = None

    def next_seed(self, function_state: Any) -> int:
        if self._by_function is None:
            self._by_function = self._derive()
        return get_seed(self._by_function[id(function_state)])

    def _derive(self) -> dict[int, Any]:
        seeds: dict[int, int] = {}

        def set_up(ingredient: _IngredientLike, seed: int) -> None:
            seeds[id(ingredient)] = seed
            rnd = create_rnd(seed)
            for sub in reversed(ingredient.ingredients):  # Sacred's order: last sub-ingredient first
                if id(sub) not in seeds and _is_prefix(ingredient.path, sub.path):
                    set_up(sub, get_seed(rnd))

        set_up(self._root, self._seed)
        # An ingredient whose path is not below the one that holds it: Sacred seeds it at random (not
        # reproducible); labrun derives it from the master seed instead.
        leftover = create_rnd(self._seed)
        by_function: dict[int, Any] = {}
        for ingredient in self._ingredients:
            if id(ingredient) not in seeds:
                seeds[id(ingredient)] = get_seed(leftover)
            rnd = create_rnd(seeds[id(ingredient)])
            if ingredient is self._root:
                for _ in range(SACRED_BUILTIN_COMMANDS):
                    get_seed(rnd)
            for state in ingredient.captured_functions:
                by_function[id(state)] = create_rnd(get_seed(rnd))
        return by_function
