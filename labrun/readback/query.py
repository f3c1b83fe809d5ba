"""Looking runs up by key: ``config.lr``, ``metrics.loss:min``, ``status``, ``start``...; filters
(``--where config.lr<0.1``) and sort orders built on them. The same rules serve ``labrun ls`` and
``store.runs(where=..., sort=...)``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from labrun.errors import LabrunError

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()
OPERATORS = ("!=", "<=", ">=", "=", "<", ">", "~")
_EXPR = re.compile(r"^\s*(?P<key>[^=!<>~\s][^=!<>~]*?)\s*(?P<op>!=|<=|>=|==|=|<|>|~)\s*(?P<value>.*?)\s*$", re.S)
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_AGO_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
STATS = ("last", "first", "min", "max", "count")
#: keys every run answers, with what they mean (shown by `labrun ls --help` and in errors)
PLAIN_KEYS = {
    "id": "the run's id in its store", "experiment": "the experiment's name", "status": "status (DIED included)",
    "start": "start time", "stop": "stop time", "duration": "seconds from start to stop", "host": "host name",
    "commit": "git commit (short, * when dirty)", "result": "the main function's return value",
    "command": "the command run", "sweep": "the id of the sweep the run belongs to", "uid": "the run's uid",
    "comment": "the run's comment (-c)",
}


class QueryError(LabrunError):
    """A filter or key that cannot be understood."""


def value_of(run: Any, key: str) -> Any:
    """The value ``key`` names for ``run``, or MISSING. ``metrics.NAME`` is the last value and
    ``metrics.NAME:min`` (``:max``, ``:first``, ``:last``, ``:count``) a summary of it."""
    return getter(key)(run)


@functools.lru_cache(maxsize=1024)
def getter(key: str) -> Callable[[Any], Any]:
    """A function giving ``value_of(run, key)``, built once per key (tables ask it for every cell)."""
    head, _, rest = key.partition(".")
    if rest and head in ("config", "info", "meta", "host", "result"):
        parts = rest.split(".")
        source: Callable[[Any], Any] = {"config": lambda run: run.config, "info": lambda run: run.info,
                                        "meta": lambda run: run.meta, "host": lambda run: run.host,
                                        "result": lambda run: run.result}[head]
        return lambda run: _dig(source(run), parts)
    if head == "metrics" and rest:
        name, _, stat = rest.rpartition(":") if ":" in rest else (rest, "", "last")
        stat = stat or "last"

        def metric(run: Any) -> Any:
            value = (run.metric_stats.get(name) or {}).get(stat)
            return MISSING if value is None else value

        return metric
    plain: dict[str, Callable[[Any], Any]] = {
        "id": lambda run: run.id,
        "experiment": lambda run: run.experiment,
        "status": lambda run: run.status,
        "start": lambda run: run.start_time or MISSING,
        "stop": lambda run: run.stop_time or MISSING,
        "duration": lambda run: MISSING if run.duration is None else run.duration,
        "host": lambda run: run.host.get("hostname", MISSING),
        "commit": lambda run: commit_of(run) or MISSING,
        "result": lambda run: run.result,
        "command": lambda run: run.summary.get("command", MISSING),
        "sweep": lambda run: (run.meta.get("sweep") or {}).get("id", MISSING),
        "uid": lambda run: run.uid or MISSING,
        "comment": lambda run: run.meta.get("comment") or MISSING,
    }
    return plain.get(key, lambda run: MISSING)


def commit_of(run: Any) -> str | None:
    """The short commit of the experiment's repository, with ``*`` when it had uncommitted changes."""
    repositories = (run.summary.get("experiment") or {}).get("repositories") or []
    return short_commit(repositories[0]) if repositories else None


def short_commit(repo: dict[str, Any]) -> str | None:
    """``3f2a9c1d*``: a repository's commit, ``*`` when it had uncommitted changes."""
    return repo["commit"][:8] + ("*" if repo.get("dirty") else "") if repo.get("commit") else None


def gpus_of(run: Any) -> list[dict[str, Any]]:
    """The GPUs a run recorded (``host.gpus.gpus``; Sacred's host info keeps a list directly)."""
    gpus = run.host.get("gpus") or {}
    found = gpus.get("gpus") or [] if isinstance(gpus, dict) else list(gpus)
    return [g if isinstance(g, dict) else {"model": str(g)} for g in found]


def _dig(node: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are values (``[1, 2]``), not entries."""
    if not isinstance(node, dict) or not node:
        return {prefix: node} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def known_keys(runs: Sequence[Any], with_info: bool = False) -> list[str]:
    """Every key some run answers: the plain ones, config entries, metrics (and info entries)."""
    keys = list(PLAIN_KEYS)
    for run in runs:
        keys += ["config." + k for k in flatten(run.config)]
        keys += ["metrics." + name for name in run.metric_stats]
        if with_info:
            keys += ["info." + k for k in flatten(run.info)]
    return list(dict.fromkeys(keys))


def check_keys(keys: Iterable[str], runs: Sequence[Any]) -> None:
    """A key that no run answers is an error with suggestions (a typo must not silently match nothing)."""
    from labrun._util.suggest import did_you_mean

    runs = list(runs)
    if not runs:
        return
    for key in keys:
        base = key.split(":")[0] if key.startswith("metrics.") else key
        if base.startswith("meta.") or any(value_of(run, key) is not MISSING for run in runs):
            continue
        if key.startswith("metrics.") and ":" in key and key.rsplit(":", 1)[1] not in STATS:
            raise QueryError(f"'{key}': a metric summary is one of {', '.join(STATS)} (metrics.loss:min)")
        known = known_keys(runs, with_info=key.startswith("info."))
        raise QueryError(f"no run has '{key}'{did_you_mean(base, known)}; keys: {', '.join(PLAIN_KEYS)}, "
                         f"config.ENTRY, metrics.NAME[:min|max|first|last|count], info.ENTRY, meta.ENTRY")


@dataclass
class Condition:
    """``KEY OP VALUE``, as written after ``--where``."""

    key: str
    op: str
    text: str
    value: Any = MISSING  # parsed from ``text`` unless given

    def __post_init__(self) -> None:
        if self.value is MISSING:
            self.value = _parse_value(self.key, self.text)
        if self.op == "~":
            try:
                self._pattern = re.compile(self.text)
            except re.error:
                self._pattern = re.compile(re.escape(self.text))

    def test(self, run: Any) -> bool:
        actual = value_of(run, self.key)
        if actual is MISSING:
            return self.op == "!="
        if self.op == "~":
            return bool(self._pattern.search(actual if isinstance(actual, str) else _text(actual)))
        expected = self.value
        if self.key == "status" and isinstance(expected, str):
            actual, expected = str(actual).upper(), expected.upper()
        if self.op in ("=", "!="):
            same = _equal(actual, expected)
            return same if self.op == "=" else not same
        try:
            a, b = _comparable(actual, expected)
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]
        except TypeError:
            return False


def parse_condition(expr: str) -> Condition:
    """``config.lr<=0.1``, ``status=COMPLETED``, ``host~gpu``, ``start>2d``: a clear error otherwise."""
    match = _EXPR.match(expr)
    if not match or not match.group("value") and match.group("op") != "=":
        raise QueryError(f"cannot read the filter '{expr}': write KEY OP VALUE with OP one of "
                         f"{' '.join(OPERATORS)}, e.g. config.lr<0.1, status=COMPLETED, metrics.loss<=0.2, "
                         f"host~gpu, start>2d")
    op = "=" if match.group("op") == "==" else match.group("op")
    return Condition(match.group("key"), op, match.group("value"))


def matcher(where: Any) -> tuple[Callable[[Any], bool], list[str]]:
    """A test for runs from ``where``: a filter text, a list of them (all must hold), a dict of
    ``key: value`` equalities, or a function taking a run; and the keys it reads."""
    if where is None or where == [] or where == ():
        return (lambda run: True), []
    if callable(where):
        return where, []
    if isinstance(where, dict):
        conditions = [Condition(str(k), "=", repr(v), v) for k, v in where.items()]
    else:
        conditions = [parse_condition(w) for w in ([where] if isinstance(where, str) else where)]
    return (lambda run: all(c.test(run) for c in conditions)), [c.key for c in conditions]


def sort_runs(runs: list[Any], keys: Sequence[str]) -> list[Any]:
    """Sorted by each key in turn (``-`` before a key: descending); runs without the key go last."""
    for key in reversed(keys):
        value = getter(key.lstrip("-+"))
        keyed = [(value(run), run) for run in runs]
        present = [(_orderable(v), run) for v, run in keyed if v is not MISSING and v is not None]
        present.sort(key=lambda pair: pair[0], reverse=key.startswith("-"))
        runs = [run for _k, run in present] + [run for v, run in keyed if v is MISSING or v is None]
    return runs


def _orderable(value: Any) -> tuple[int, Any]:
    if isinstance(value, _dt.datetime):
        return 0, value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return 0, value
    return 1, _text(value)


def _parse_value(key: str, text: str) -> Any:
    if key in ("start", "stop"):
        ago = _AGO.match(text.strip())
        if ago:
            seconds = float(ago.group(1)) * _AGO_SECONDS[ago.group(2)]
            return _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=seconds)
        try:
            moment = _dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise QueryError(f"'{key}' takes a time: an age like 2d, 3h, 30m, or an ISO date like 2026-11-30; "
                             f"got '{text}'") from None
        return moment.astimezone(_dt.timezone.utc) if moment.tzinfo is None else moment
    from labrun.config.updates import parse_value

    return parse_value(text)


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)) and not isinstance(actual, bool):
        return float(actual) == float(expected)
    if actual == expected:
        return True
    return _text(actual) == _text(expected)


def _comparable(actual: Any, expected: Any) -> tuple[Any, Any]:
    if isinstance(actual, _dt.datetime) and isinstance(expected, _dt.datetime):
        return actual, expected
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
        return actual, expected
    if isinstance(actual, str) and isinstance(expected, str):
        return actual, expected
    raise TypeError


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, default=str)
