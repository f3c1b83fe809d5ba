"""What each launcher adds over ``local`` for a trivial run, on this machine.

Run on demand (never in the test suite; timings are noisy):

    python bench/bench_launchers.py [--runs 8] [--repeats 3] [--engines local,ray,slurm]

Each engine runs the same sweep of N trivial runs (``-M -j 1 -F runs with lr=X1,...,XN``), one run at a
time, into a fresh file store: ``local`` (a process each), ``ray`` (a Ray head started here on 127.0.0.1,
as tests/ray_head.py does; each run a Ray task) and ``slurm`` (a single-node Slurm with accounting started
here, tests/slurm_cluster.py, needs root and Debian's packages; the sweep is one job array with
``--wait``). It prints the median wall time of the whole sweep, the fixed part (a sweep of one run) and the
per-run part ((N runs - 1 run) / (N - 1)), and the difference of each to ``local``.
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

EXPERIMENT = textwrap.dedent('''
    from labrun import Experiment

    ex = Experiment("bench_launchers")

    @ex.config
    def cfg():
        lr = 0.1

    @ex.automain
    def main(lr, _run):
        _run.log_scalar("loss", lr)
        return lr
''')


def sweep_seconds(folder: str, runs: int, launcher: str, env: dict[str, str]) -> float:
    store = tempfile.mkdtemp(prefix="runs-", dir=folder)
    values = ",".join(str(0.1 + i / 1000) for i in range(runs))
    start = time.perf_counter()
    wait = ["--wait"] if launcher.startswith("slurm") else []  # a Slurm sweep otherwise returns once submitted
    subprocess.run([sys.executable, "exp.py", "-M", "-j", "1", "-F", store, "--launcher", launcher, *wait, "with",
                    f"lr={values}"], cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, **env, "LABRUN_JOURNAL_DIR": os.path.join(folder, "journal")})
    return time.perf_counter() - start


def measure(folder: str, runs: int, repeats: int, launcher: str, env: dict[str, str]) -> tuple[float, float]:
    """Median seconds of a one-run sweep and of an N-run sweep."""
    one = statistics.median(sweep_seconds(folder, 1, launcher, env) for _ in range(repeats))
    many = statistics.median(sweep_seconds(folder, runs, launcher, env) for _ in range(repeats))
    return one, many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default="local,ray,slurm")
    args = parser.parse_args()
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lr-bench-", dir="/tmp") as folder:
        with open(os.path.join(folder, "exp.py"), "w") as f:
            f.write(EXPERIMENT)
        for engine in args.engines.split(","):
            if engine == "local":
                results[engine] = measure(folder, args.runs, args.repeats, "local", {})
            elif engine == "ray":
                from ray_head import RAY_ENV, RayHead

                head = RayHead().start()
                try:
                    results[engine] = measure(folder, args.runs, args.repeats, f"ray:address={head.address}",
                                              RAY_ENV)
                finally:
                    head.stop()
            elif engine == "slurm":
                from slurm_cluster import SlurmCluster

                cluster = SlurmCluster(os.path.join(folder, "slurm")).start()
                try:
                    results[engine] = measure(folder, args.runs, args.repeats, "slurm:shared_fs=true,time=10",
                                              cluster.env)
                finally:
                    cluster.stop()
    base_one, base_many = results.get("local", (0.0, 0.0))
    base_per_run = (base_many - base_one) / (args.runs - 1)
    print(f"{'launcher':<8} {'1 run':>8} {f'{args.runs} runs':>8} {'fixed +':>9} {'per run':>9} {'per run +':>10}")
    for engine, (one, many) in results.items():
        per_run = (many - one) / (args.runs - 1)
        print(f"{engine:<8} {one:7.2f}s {many:7.2f}s {one - base_one:+8.2f}s {per_run * 1000:7.0f}ms "
              f"{(per_run - base_per_run) * 1000:+8.0f}ms")


if __name__ == "__main__":
    main()
