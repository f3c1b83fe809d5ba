"""Read-only containers handed to code inside a run, so the recorded config stays what ran."""

from __future__ import annotations

from typing import Any, NoReturn

from labrun.errors import ReadOnlyConfigError


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    where = f" '{self._where}'" if getattr(self, "_where", "") else ""
    raise ReadOnlyConfigError(
        f"the config{where} is read-only inside a run, so that what is recorded is what ran; change it with "
        f"an update ('with key=value') or a config scope, or work on a copy (copy.deepcopy)"
    )


class ReadOnlyDict(dict):
    """A dict that refuses every change; nested dicts and lists are read-only too."""

    __slots__ = ("_where",)

    def __init__(self, *args: Any, where: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._where = where

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> Any:
        import copy

        return thaw(copy.deepcopy(dict(self), memo))

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


class ReadOnlyList(list):
    """A list that refuses every change."""

    __slots__ = ("_where",)

    def __init__(self, *args: Any, where: str = ""):
        super().__init__(*args)
        self._where = where

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = sort = reverse = _refuse  # type: ignore
    __iadd__ = __imul__ = _refuse  # type: ignore

    def __copy__(self) -> list:
        return list(self)

    def __deepcopy__(self, memo: dict) -> Any:
        import copy

        return thaw(copy.deepcopy(list(self), memo))

    def __reduce__(self) -> Any:
        return (list, (list(self),))


def freeze(value: Any, where: str = "") -> Any:
    """A read-only deep copy of a JSON-like value."""
    if isinstance(value, dict):
        return ReadOnlyDict(
            {k: freeze(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}, where=where
        )
    if isinstance(value, list):
        return ReadOnlyList([freeze(v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(value)],
                            where=where)
    return value


def thaw(value: Any) -> Any:
    """A plain, writable deep copy."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [thaw(v) for v in value]
    return value
