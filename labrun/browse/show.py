"""``labrun show RUN``: everything about one run on one screen."""

from __future__ import annotations

import os
import re
import shlex
import sys
from typing import IO, Any

from labrun._util.paths import display_path
from labrun.readback.query import flatten, gpus_of, short_commit
from labrun._util.table import ago, duration, format_cell, local_time, paint_status, use_color

OUTPUT_LINES = 20


def show_run(run: Any, out: IO[str] = sys.stdout) -> int:
    """Print the run; the exit status."""
    color = use_color(out)
    lines: list[str] = []
    add = lines.append
    record = run.record
    add(f"Run {run.id} of {run.experiment} in {run.store}: {paint_status(run.status, color)}")
    started = f"{local_time(run.start_time)} ({ago(run.start_time)})" if run.start_time else "not started"
    ended = f", ended {local_time(run.stop_time)}" if run.stop_time else ""
    add(f"  started   {started}{ended}, took {duration(run.duration) or '-'}")
    add(f"  command   {command_line(run)}")
    meta = run.meta
    if meta.get("comment"):
        add(f"  comment   {meta['comment']}")
    if meta.get("sweep"):
        sweep = meta["sweep"]
        add(f"  sweep     {sweep.get('id')}, run {sweep.get('index', 0) + 1} of {sweep.get('size')}")
    if meta.get("rerun_of"):
        add(f"  rerun of  run {meta['rerun_of'].get('run_id')} in {meta['rerun_of'].get('store')}")
    if isinstance(run.result, (int, float, str, bool)) or run.result is None:
        add(f"  result    {run.result!r}")
    else:
        add(f"  result    {format_cell(run.result, cut=False)}")

    changed = set(meta.get("config_changed") or []) | set(flatten(meta.get("config_updates") or {}))
    docs = meta.get("config_docs") or {}
    named = meta.get("named_configs") or []
    add("")
    add("Config" + (f" (named configs: {', '.join(named)})" if named else "") +
        (" — * changed from the defaults" if changed else "") + ":")
    for key, value in flatten(run.config).items():
        mark = "*" if key in changed else " "
        text = f"  {mark} {key} = {value!r}"
        if docs.get(key):
            text = f"{text:<44} # {docs[key]}"
        add(text)

    add("")
    add("Code and environment:")
    for repo in (record.get("experiment") or {}).get("repositories") or []:
        dirty = _dirty_files(repo)
        state = "clean" if not repo.get("dirty") else f"dirty: {', '.join(dirty[:8]) or 'uncommitted changes'}" + \
            (f" and {len(dirty) - 8} more" if len(dirty) > 8 else "")
        add(f"  git       {short_commit(repo) or '(no commit yet)'} on "
            f"{repo.get('branch') or '(detached)'} in {repo.get('path')}, {state}")
    sources = (record.get("experiment") or {}).get("sources") or []
    names = ", ".join(s[0] for s in sources[:6]) + (" ..." if len(sources) > 6 else "")
    add(f"  sources   {len(sources)} file{'s' if len(sources) != 1 else ''}{': ' + names if sources else ''}")
    host = run.host
    gpu_text = ", ".join(g.get("model", "?") for g in gpus_of(run)) or "none"
    environment = record.get("environment") or {}
    packages = len(environment.get("distributions") or [])
    system = host.get("os", ["?"])
    add(f"  host      {host.get('hostname', '-')} ({system[0] if isinstance(system, list) else system}), "
        f"{host.get('cpu_count', '?')} CPUs, GPUs: {gpu_text}")
    add(f"  python    {host.get('python_version', '-')}, {packages} packages"
        f"{' in ' + environment['prefix'] if environment.get('prefix') else ''}")

    stats = run.metric_stats
    if stats:
        add("")
        add("Metrics:")
        headers = ["name", "points", "first", "last", "min", "max"]
        rows = [[name, s.get("count"), s.get("first"), s.get("last"), s.get("min"), s.get("max")]
                for name, s in sorted(stats.items())]
        from labrun._util.table import render_table

        add("  " + render_table(headers, rows).replace("\n", "\n  "))

    info = {k: v for k, v in flatten(run.info).items() if not k.startswith("metrics")}
    if info:
        add("")
        add("Info:")
        for key, value in info.items():
            add(f"  {key} = {format_cell(value)}")

    if run.artifacts or record.get("resources"):
        add("")
        add("Files:")
        for name in run.artifacts:
            add(f"  artifact  {name}{_size(run.reader.artifact_size(run.id, name))}")
        for entry in record.get("resources") or []:
            add(f"  resource  {entry[0]}{_size(run.reader.resource_size(entry))}")

    output = run.output.rstrip("\n").splitlines()
    if output:
        add("")
        add(f"Output (last {min(OUTPUT_LINES, len(output))} of {len(output)} lines):")
        lines.extend("  " + line for line in output[-OUTPUT_LINES:])
    if record.get("fail_trace"):
        add("")
        add("Failure:")
        lines.extend("  " + line.rstrip("\n") for line in "".join(record["fail_trace"]).splitlines())

    add("")
    add(f"Run it again: {rerun_command(run)}")
    out.write("\n".join(lines) + "\n")
    return 0


def command_line(run: Any) -> str:
    """``python exp.py COMMAND with UPDATES NAMED`` as the run was started (from what it recorded)."""
    meta = run.meta
    mainfile = (run.record.get("experiment") or {}).get("mainfile") or "(notebook)"
    parts = ["python", mainfile]
    command = run.record.get("command") or meta.get("command")
    if command and command != "main":
        parts.append(command)
    updates = [_update_token(k, v) for k, v in flatten(meta.get("config_updates") or {}).items()]
    if updates or meta.get("named_configs"):
        parts += ["with", *(meta.get("named_configs") or []), *updates]
    return " ".join(shlex.quote(p) for p in parts)


def _update_token(key: str, value: Any) -> str:
    """``model=svm`` for a plain word, ``lr=0.1``; the repr where the text alone would read differently."""
    from labrun.config.updates import parse_value

    plain = isinstance(value, str) and value and parse_value(value) == value
    return f"{key}={value if plain else repr(value)}"


def rerun_command(run: Any) -> str:
    """The ``labrun rerun`` line for this run; a store URL is shown without its password."""
    if "://" in run.store_url and not run.store_url.startswith("file://"):  # MongoDB, MLflow: STORE RUN_ID
        return f"labrun rerun {shlex.quote(run.store)} {run.id}"
    return f"labrun rerun {shlex.quote(display_path(os.path.join(run.store, str(run.id))))}"


def _dirty_files(repo: dict[str, Any]) -> list[str]:
    files = re.findall(r"^diff --git a/(\S+) b/", repo.get("diff") or "", re.M)
    return files + [f"{name} (untracked)" for name in (repo.get("untracked") or {})]


def _size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f" ({value:.0f} {unit})" if unit == "B" else f" ({value:.1f} {unit})"
        value /= 1024
    return ""
