"""``labrun plot RUN...``: the runs' metrics overlaid, one panel per metric, each run labelled by its id and
the config entries that tell the runs apart. To a PNG/SVG/PDF file through matplotlib (``labrun[plot]``),
or drawn in the terminal."""

from __future__ import annotations

import os
import shutil
import sys
from typing import IO, Any, Sequence

from labrun.browse.ls import differing_config, metric_names
from labrun.errors import LabrunError
from labrun.readback.query import value_of
from labrun._util.suggest import did_you_mean
from labrun._util.table import use_color

FILE_FORMATS = (".png", ".svg", ".pdf")
MAX_LABEL_ENTRIES = 3


def labels(runs: Sequence[Any]) -> list[str]:
    """``7 lr=0.1 model=svm``: the run's id and up to three config entries that differ among the runs."""
    keys = differing_config(runs)[:MAX_LABEL_ENTRIES]
    return [" ".join([str(run.id), *(f"{k[len('config.'):]}={value_of(run, k)}" for k in keys)]) for run in runs]


def curves(runs: Sequence[Any], name: str, x: str, smooth: int) -> list[tuple[Any, list[float], list[float]]]:
    """For each run that has the metric: (run, xs, ys); xs are steps or seconds since the run started."""
    out = []
    for run in runs:
        if name not in run.metrics:
            continue
        metric = run.metrics[name]
        ys = [float(v) for v in metric.values]
        if x == "time":
            start = run.start_time.timestamp() if run.start_time else (float(metric.timestamps[0]) if len(ys) else 0.0)
            xs = [float(t) - start for t in metric.timestamps]
        else:
            xs = [float(s) for s in metric.steps]
        out.append((run, xs, moving_average(ys, smooth)))
    return out


def moving_average(values: list[float], window: int) -> list[float]:
    """Each value replaced by the mean of it and the ``window - 1`` before it (fewer at the start)."""
    if window <= 1:
        return values
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_runs(runs: Sequence[Any], metrics: Sequence[str] = (), output: str | None = None, x: str = "step",
              smooth: int = 1, log: bool = False, out: IO[str] = sys.stdout) -> int:
    """Draw the metrics; the exit status."""
    if not runs:
        raise LabrunError("no runs to plot; name them as runs/7, STORE 7 9, or STORE --where ...")
    if x not in ("step", "time"):
        raise LabrunError(f"--x takes step or time, got '{x}'")
    available = metric_names(runs) + sorted({m for r in runs for m in r.metric_stats} - set(metric_names(runs)))
    names = list(metrics) or metric_names(runs)
    for name in names:
        if name not in available:
            raise LabrunError(f"no run has the metric '{name}'{did_you_mean(name, available)}; metrics: "
                              f"{', '.join(available) or 'none'}")
    if not names:
        raise LabrunError("these runs have no metrics to plot (system metrics are plotted when named: --metric "
                          "system/cpu_percent)")
    names_labels = dict(zip((r.id for r in runs), labels(runs)))
    panels = [(name, curves(runs, name, x, smooth)) for name in names]
    if output:
        save_figure(panels, names_labels, output, x, log)
        out.write(f"wrote {output}: {len(names)} panel{'s' if len(names) != 1 else ''}, {len(runs)} run"
                  f"{'s' if len(runs) != 1 else ''}\n")
        return 0
    from labrun.browse.termplot import render

    size = shutil.get_terminal_size()
    color = use_color(out)
    height = max(8, min(20, (size.lines - 2) // max(1, len(panels)) - 4))
    blocks = [render(f"{name} by {x}" + (f", smoothed over {smooth}" if smooth > 1 else ""),
                     [(names_labels[run.id], xs, ys) for run, xs, ys in curves_], width=size.columns,
                     height=height, color=color, log_y=log) for name, curves_ in panels]
    out.write("\n\n".join(blocks) + "\n")
    return 0


def save_figure(panels: Sequence[tuple[str, list]], names_labels: dict[Any, str], output: str, x: str,
                log: bool) -> None:
    """One panel per metric, stacked, written as PNG, SVG or PDF (by the file's extension)."""
    extension = os.path.splitext(output)[1].lower()
    if extension not in FILE_FORMATS:
        raise LabrunError(f"-o takes a .png, .svg or .pdf file, got '{output}'")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LabrunError("plotting to a file needs matplotlib: pip install 'labrun[plot]' (without -o, "
                          "labrun plot draws in the terminal)") from None
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False)
    for axis, (name, curves_) in zip(axes[:, 0], panels):
        for run, xs, ys in curves_:
            axis.plot(xs, ys, label=names_labels[run.id], linewidth=1.2)
        axis.set_title(name)
        axis.set_xlabel("step" if x == "step" else "seconds since the run started")
        if log:
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
