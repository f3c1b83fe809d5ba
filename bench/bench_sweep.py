"""What a sweep costs, and what ``-j 2`` gains, on this machine.

Run on demand (never in the test suite; timings are noisy):

    python bench/bench_sweep.py [--runs 8] [--repeats 3] [--cpu-seconds 2]

1. Overhead per run: N runs of a trivial experiment recorded in a file store, started by hand one after the
   other (``python exp.py -F runs with lr=X``, as a shell loop would), against the same N runs as one sweep
   (``python exp.py -M -F runs with lr=X1,...,XN``). The sweep pays for planning (each config resolved, the
   store read for resume), one more interpreter (the sweep itself), the progress line and the final table.
2. Parallel speed-up: 4 CPU-bound runs (each a pure-Python loop of about --cpu-seconds) as a sweep with
   ``-j 1`` and with ``-j 2``; the speed-up is the ratio of their wall times. Pin the bench to two cores
   (``taskset -c 0,1 python bench/bench_sweep.py``) to measure what a 2-core machine gives.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

EXPERIMENT = textwrap.dedent('''
    import time
    from labrun import Experiment

    ex = Experiment("bench_sweep")

    @ex.config
    def cfg():
        lr = 0.1
        cpu_seconds = 0.0

    @ex.automain
    def main(lr, cpu_seconds, _run):
        end = time.process_time() + cpu_seconds
        x = 0
        while time.process_time() < end:
            for i in range(10000):
                x += i * i
        _run.log_scalar("loss", lr)
        return lr
''')


def timed(args: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "LABRUN_JOURNAL_DIR": os.path.join(cwd, "journal")})
    return time.perf_counter() - start


def overhead(runs: int, repeats: int) -> tuple[float, float]:
    """Median seconds for N runs by hand and as one sweep."""
    by_hand, swept = [], []
    values = [str(0.1 + i / 1000) for i in range(runs)]
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "exp.py"), "w") as f:
                f.write(EXPERIMENT)
            by_hand.append(sum(timed(["exp.py", "-F", "hand", "-l", "ERROR", "with", f"lr={v}"], folder)
                               for v in values))
            swept.append(timed(["exp.py", "-M", "-F", "sweep", "-l", "ERROR", "with", "lr=" + ",".join(values)],
                               folder))
    return statistics.median(by_hand), statistics.median(swept)


def speed_up(cpu_seconds: float, repeats: int) -> tuple[float, float]:
    """Median seconds for 4 CPU-bound runs with -j 1 and with -j 2."""
    one, two = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "exp.py"), "w") as f:
                f.write(EXPERIMENT)
            for jobs, times in (("1", one), ("2", two)):
                times.append(timed(["exp.py", "-M", "-j", jobs, "--rerun-all", "-F", "runs", "-l", "ERROR", "with",
                                    "lr=1,2,3,4", f"cpu_seconds={cpu_seconds}"], folder))
    return statistics.median(one), statistics.median(two)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu-seconds", type=float, default=2.0)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"python {sys.version.split()[0]}, {cores} usable cores")
    hand, sweep = overhead(args.runs, args.repeats)
    print(f"{args.runs} runs by hand: {hand:.2f} s ({hand / args.runs * 1000:.0f} ms/run); as one sweep: {sweep:.2f} s "
          f"({sweep / args.runs * 1000:.0f} ms/run); the sweep adds {(sweep - hand) / args.runs * 1000:+.0f} ms/run")
    one, two = speed_up(args.cpu_seconds, args.repeats)
    print(f"4 CPU-bound runs of {args.cpu_seconds:g} s: -j 1 {one:.2f} s, -j 2 {two:.2f} s, speed-up {one / two:.2f}x")


if __name__ == "__main__":
    main()
