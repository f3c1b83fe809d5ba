"""What may be stored as config: JSON values under keys MongoDB accepts.

numpy scalars and arrays become Python numbers and lists, tuples become lists; anything else that JSON cannot
hold is refused with the path of the entry, so a config always round-trips through every store.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from labrun.config.patch import KeyPath, format_path
from labrun.errors import ConfigError


def check_key(key: Any, path: KeyPath) -> None:
    """Refuse keys that MongoDB or dotted command-line paths cannot address."""
    where = format_path(path + (key,))
    if not isinstance(key, str):
        raise ConfigError(f"config key {key!r} at '{where}' is a {type(key).__name__}; config keys must be strings")
    if "." in key:
        raise ConfigError(
            f"config key '{key}' contains '.', which the command line reads as nesting and MongoDB refuses; "
            f"use '{key.replace('.', '_')}' or a nested dict"
        )
    if key.startswith("$"):
        raise ConfigError(f"config key '{key}' starts with '$', which MongoDB refuses; rename it")
    if not key:
        raise ConfigError(f"an empty config key at '{format_path(path)}'; give it a name")


def storable(value: Any) -> Any:
    """What a store can hold of a run's info, result or artifact metadata: JSON values, anything else as its
    repr. Never an error (unlike ``to_jsonable`` for the config, whose checks protect what users set)."""
    return to_jsonable(value, force=True, on_key=None)


def to_jsonable(value: Any, path: KeyPath = (), force: bool = False,
                on_key: Callable[[Any, KeyPath], None] | None = check_key) -> Any:
    """A copy of ``value`` made only of dict, list, str, int, float, bool and None.

    With ``force``, values JSON cannot hold are stored as their repr instead of raising.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if on_key is not None and not force:
                on_key(key, path)
            out[str(key) if force else key] = to_jsonable(item, path + (key,), force, on_key)
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, path + (i,), force, on_key) for i, item in enumerate(value)]
    numpy = sys.modules.get("numpy")  # only installed numpy types can reach here; never import it
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return to_jsonable(value.tolist(), path, force, on_key)
        if isinstance(value, numpy.generic):
            return to_jsonable(value.item(), path, force, on_key)
    if force:
        return repr(value)
    raise ConfigError(
        f"config entry '{format_path(path)}' is a {type(value).__module__}.{type(value).__qualname__}, which "
        f"cannot be stored as JSON; store a number, string, list or dict instead (names starting with '_' "
        f"are not config), or pass -f/--force to store its repr"
    )


def same_kind(old: Any, new: Any) -> bool:
    """Whether replacing ``old`` by ``new`` keeps the entry's type; ints and floats count as one kind."""
    if old is None or new is None or type(old) is type(new):
        return True
    numbers = (int, float)
    return (isinstance(old, numbers) and isinstance(new, numbers)
            and not isinstance(old, bool) and not isinstance(new, bool))



def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested entries as dotted keys (``{"opt": {"lr": 1}}`` -> ``{"opt.lr": 1}``): how TensorBoard's HParams
    and MLflow's params show a config."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
