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
    if not key:
        raise ConfigError(f"an empty config key at '{format_path(path)}'; give it a name")
    from labrun.settings import SETTINGS

    checks = SETTINGS.CONFIG
    if checks.ENFORCE_KEYS_MONGO_COMPATIBLE:
        if "." in key:
            raise ConfigError(
                f"config key '{key}' contains '.', which the command line reads as nesting and MongoDB refuses; "
                f"use '{key.replace('.', '_')}' or a nested dict"
            )
        if key.startswith("$"):
            raise ConfigError(f"config key '{key}' starts with '$', which MongoDB refuses; rename it")
    if checks.ENFORCE_KEYS_NO_EQUALS and "=" in key:
        raise ConfigError(f"config key '{key}' contains '=', which the command line cannot name; rename it")
    if checks.ENFORCE_KEYS_JSONPICKLE_COMPATIBLE and key.startswith(("py/", "json://")):
        raise ConfigError(f"config key '{key}' starts like a jsonpickle tag, which readers would decode; rename it")
    if checks.ENFORCE_VALID_PYTHON_IDENTIFIER_KEYS and not key.isidentifier():
        raise ConfigError(f"config key '{key}' is not a Python identifier "
                          f"(SETTINGS.CONFIG.ENFORCE_VALID_PYTHON_IDENTIFIER_KEYS is on); rename it")


_JSON_SCALARS = (bool, str, int, float)


def storable(value: Any) -> Any:
    """What a store holds of a run's info, result or artifact metadata, in Sacred's form, so readers written
    for Sacred's run.json and MongoDB documents read it: JSON values as they are; tuples, sets and numpy
    values (arrays, scalars, masked arrays) in jsonpickle's tagged form (``{"py/tuple": [...]}``,
    ``{"py/object": "numpy.float64", "dtype": "float64", "value": 0.5}``); anything else as its repr.
    Never an error (unlike ``to_jsonable`` for the config, whose checks protect what users set)."""
    if value is None or value.__class__ in _JSON_SCALARS:  # not isinstance: numpy.float64 is a float
        return value
    if isinstance(value, dict):
        return {key if isinstance(key, str) else str(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, tuple):
        return {"py/tuple": [storable(item) for item in value]}
    if isinstance(value, (set, frozenset)):
        return {"py/set": [storable(item) for item in sorted(value, key=repr)]}
    numpy = sys.modules.get("numpy")  # only installed numpy types can reach here; never import it
    if numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic)):
        return _jsonpickled(value)
    for plain_type in _JSON_SCALARS:  # a subclass (an IntEnum, a str subclass): its plain value
        if isinstance(value, plain_type):
            return plain_type(value)
    return repr(value)


def _jsonpickled(value: Any) -> Any:
    """jsonpickle's tagged JSON of a numpy value (imported on the first such value: ~100 ms)."""
    import json

    import jsonpickle
    import jsonpickle.ext.numpy

    jsonpickle.ext.numpy.register_handlers()
    try:
        return json.loads(jsonpickle.encode(value, keys=True))
    except Exception:  # an exotic dtype jsonpickle cannot encode: its repr, as for any other object
        return repr(value)


def plain(value: Any) -> Any:
    """A stored value with Sacred's jsonpickle tags taken off, for showing and comparing: numpy scalars and
    arrays as numbers and lists, tuples and sets as lists."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if not isinstance(value, dict):
        return value
    for tag in ("py/tuple", "py/set"):
        if tag in value and len(value) == 1:
            return plain(value[tag])
    if str(value.get("py/object", "")).startswith("numpy."):
        return plain(value["value"] if "value" in value else value.get("values"))
    return {key: plain(item) for key, item in value.items()}


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
