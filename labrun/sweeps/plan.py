"""Planning a sweep: each point's full config, its seed, and what the store already holds.

A run is matched to the store by its command and its whole resolved config (the seed included), never by
the text of the command line, so a resumed, reordered or extended sweep finds what is done. For that the
seeds must not be random: unless the user sets or sweeps ``seed``, each run's seed is derived from the
sweep's seed and the values the run sweeps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from labrun.config.resolve import MAX_SEED, SEED_KEY, resolve
from labrun.config.updates import parse_update_token, parse_update_tokens
from labrun.errors import CommandLineError, ConfigError, LabrunError
from labrun.sweeps.grid import Grid, Point, describe

COMPLETED, RUNNING = "COMPLETED", "RUNNING"


@dataclass
class PlannedRun:
    """One run of the sweep: its update tokens, the values it sweeps, its config, and the best matching
    run already in the store (None when there is none)."""

    index: int
    tokens: list[str]
    values: dict[str, Any]
    config: dict[str, Any]
    previous: dict[str, Any] | None = None

    @property
    def previous_status(self) -> str | None:
        return self.previous["status_now"] if self.previous else None


@dataclass
class SweepPlan:
    """Every run of a sweep, and where it is recorded."""

    id: str
    seed: int
    experiment: str
    command: str
    command_line: str  # how the sweep was started, credentials redacted (recorded with each run)
    runs: list[PlannedRun]
    store_urls: list[str] = field(default_factory=list)  # every store the runs record to (credentials included)
    store_url: str | None = None  # the store resume reads (credentials included: never print it)
    store_label: str | None = None
    unreadable_stores: list[str] = field(default_factory=list)

    def meta(self, run: PlannedRun) -> dict[str, Any]:
        """What each run records in ``meta.sweep``."""
        return {"id": self.id, "index": run.index, "size": len(self.runs), "command": self.command_line,
                "seed": self.seed, "values": run.values}

    def to_run(self, rerun_all: bool) -> list[PlannedRun]:
        """The runs to start: all with ``rerun_all``; else those not completed and not running elsewhere."""
        return [r for r in self.runs if rerun_all or r.previous_status not in (COMPLETED, RUNNING)]

    def summary(self, rerun_all: bool) -> str:
        """``12 planned: 9 already completed, 3 to run (retrying 2 FAILED, 1 DIED)``."""
        planned = f"{len(self.runs)} planned"
        if rerun_all:
            return f"{planned}: all to run (--rerun-all)"
        todo = self.to_run(rerun_all)
        done = sum(1 for r in self.runs if r.previous_status == COMPLETED)
        elsewhere = sum(1 for r in self.runs if r.previous_status == RUNNING)
        retried: dict[str, int] = {}
        for r in todo:
            if r.previous_status:
                retried[r.previous_status] = retried.get(r.previous_status, 0) + 1
        details = [f"{done} already completed"] if done else []
        if elsewhere:
            details.append(f"{elsewhere} running elsewhere (left alone)")
        details.append(f"{len(todo)} to run")
        text = f"{planned}: {', '.join(details)}"
        if retried:
            text += " (retrying " + ", ".join(f"{n} {status}" for status, n in sorted(retried.items())) + ")"
        return text


def default_sweep_seed(experiment: str) -> int:
    """The sweep seed when the user sets none: fixed per experiment, so repeating a sweep repeats its seeds."""
    return _hash_int(f"labrun-sweep:{experiment}")


def derive_seed(sweep_seed: int, values: dict[str, Any]) -> int:
    """A run's seed from the sweep's seed and the values it sweeps (independent of their order)."""
    return _hash_int(f"{sweep_seed}:{canonical(values)}")


def canonical(value: Any) -> str:
    """One text for equal configs, whatever the order of their keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (MAX_SEED + 1)


def take_sweep_seed(grid: Grid) -> int | None:
    """A single ``seed=N`` among the fixed updates is the sweep's own seed: remove it and return N."""
    for token in list(grid.fixed):
        if "=" not in token:
            continue
        path, node = parse_update_token(token)
        if path == (SEED_KEY,):
            value = getattr(node, "value", None)
            if not isinstance(value, int) or isinstance(value, bool):
                raise CommandLineError(f"the sweep's seed must be a whole number, got '{token}'")
            grid.fixed.remove(token)
            return value
    return None


def plan_sweep(experiment: Any, command: str, grid: Grid, *, force: bool, name: str, command_line: str,
               store_urls: Sequence[str], read_store: bool) -> SweepPlan:
    """Resolve every point's config as its run will (bad input fails here, before any run starts) and,
    when ``read_store``, find each in the first store labrun can read back."""
    sweep_seed = take_sweep_seed(grid)
    seed_swept = any(axis[0].key == SEED_KEY for axis in grid.axes) or \
        any(choice.key == SEED_KEY for entry in grid.listed for choice in entry)
    seed = default_sweep_seed(name) if sweep_seed is None else sweep_seed
    points = grid.points()
    if not points:
        raise CommandLineError("the sweep has no runs")
    sources = experiment.traverse()
    logger = _once_logger(experiment.run_logger())
    runs = []
    for index, point in enumerate(points):
        config = _resolve_point(sources, point, command, force, logger, seed, seed_swept, index, len(points))
        runs.append(PlannedRun(index, point.tokens, point.values, config))
    sweep_id = hashlib.sha256(canonical(
        {"experiment": name, "command": command, "seed": seed, "runs": [r.tokens for r in runs]}).encode()
    ).hexdigest()[:8]
    plan = SweepPlan(sweep_id, seed, name, command, command_line, runs, list(store_urls))
    readable = [url for url in store_urls if _readable(url)]
    plan.unreadable_stores = [url for url in store_urls if not _readable(url)]
    if readable:
        from labrun._util.redact import redact_url

        plan.store_url, plan.store_label = readable[0], redact_url(readable[0])
        if read_store:
            match_previous(plan)
    return plan


def _resolve_point(sources: list, point: Point, command: str, force: bool, logger: logging.Logger, seed: int,
                   seed_swept: bool, index: int, size: int) -> dict[str, Any]:
    try:
        parsed = parse_update_tokens(point.tokens)
        resolved = resolve(sources, parsed.fixed, parsed.named_configs, command, force, logger)
        if resolved.seed_generated and not seed_swept:
            point.tokens.append(f"{SEED_KEY}={derive_seed(seed, point.values)}")
            parsed = parse_update_tokens(point.tokens)
            resolved = resolve(sources, parsed.fixed, parsed.named_configs, command, force, logger)
    except LabrunError as exc:
        where = f"run {index + 1} of {size}" + (f" ({describe(point.values)})" if point.values else "")
        raise ConfigError(f"{where}: {exc}") from None
    return resolved.config


def _readable(url: str) -> bool:
    return url.startswith(("file://", "mongodb://", "mongodb+srv://"))


def match_previous(plan: SweepPlan) -> None:
    """Give each planned run the best run of the store with the same command and config: COMPLETED first,
    then one still RUNNING (alive), else the newest (FAILED, INTERRUPTED, DIED, ...)."""
    from labrun.readback import open_store
    from labrun.readback.stored_run import effective_status

    assert plan.store_url is not None
    if plan.store_url.startswith("file://") and not os.path.exists(plan.store_url.removeprefix("file://")):
        return  # a new file store: nothing ran yet
    reader = open_store(plan.store_url)
    try:
        records = reader.records(experiment=plan.experiment, command=plan.command)
    finally:
        reader.close()
    rank = {COMPLETED: 2, RUNNING: 1}
    best: dict[str, dict[str, Any]] = {}
    for record in records:  # oldest first: a newer run of equal rank wins
        record["status_now"] = effective_status(record)
        key = canonical(record.get("config", {}))
        held = best.get(key)
        if held is None or rank.get(record["status_now"], 0) >= rank.get(held["status_now"], 0):
            best[key] = record
    for run in plan.runs:
        run.previous = best.get(canonical(run.config))


def _once_logger(parent: logging.Logger) -> logging.Logger:
    """A logger that says each config warning once, not once per run of the sweep."""
    logger = parent.getChild("sweep")
    if not any(isinstance(f, _Once) for f in logger.filters):
        logger.addFilter(_Once())
    return logger


class _Once(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True
