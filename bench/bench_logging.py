"""Logging cost and whole-run cost, labrun's file store against Sacred's FileStorageObserver.

Run on demand, in an environment that also has Sacred (never in the test suite; timings are noisy):

    python3 -m venv /tmp/benchenv && /tmp/benchenv/bin/pip install -e . sacred
    /tmp/benchenv/bin/python bench/bench_logging.py [--points 10000,100000,1000000] [--trivial-repeats 7]

Each case runs in a fresh process. In-loop cost is the loop's wall time divided by the number of points;
end-to-end cost is the time from the start of the run call until it returned with every observer done,
divided by the points *counted back from the store's metrics.json*; peak RSS is ru_maxrss of that process.
"Beyond an empty run" subtracts the end-to-end time of the same run logging no point (measured once per tool
in this bench): what the points themselves cost, without the run's fixed cost (provenance, id, files).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

CASE = textwrap.dedent('''
    import json, os, resource, sys, time
    tool, n, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if tool == "labrun":
        from labrun import Experiment
        from labrun.observers.file_storage import FileStorageObserver
    else:
        from sacred import Experiment
        from sacred.observers import FileStorageObserver
    ex = Experiment("bench")
    ex.observers.append(FileStorageObserver(store))

    @ex.main
    def main(_run):
        log = _run.log_scalar
        start = time.perf_counter()
        for i in range(n):
            log("loss", 0.5)
        return time.perf_counter() - start

    start = time.perf_counter()
    run = ex.run(options={"--loglevel": "ERROR"})
    total = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before counting, which loads the file
    run_dir = os.path.join(store, str(run._id))
    counted = 0
    if os.path.exists(os.path.join(run_dir, "metrics.json")):  # Sacred writes none for a run without points
        with open(os.path.join(run_dir, "metrics.json")) as f:
            counted = len(json.load(f).get("loss", {}).get("values", []))
    print(json.dumps({"loop": run.result, "total": total, "counted": counted,
                      "rss_mb": rss_mb}))
''')

TRIVIAL = textwrap.dedent('''
    import sys
    if sys.argv[1] == "labrun":
        from labrun import Experiment
    else:
        from sacred import Experiment
    ex = Experiment("trivial")

    @ex.config
    def cfg():
        a = 1

    @ex.main
    def main(a):
        return a

    ex.run_commandline([sys.argv[0]] + sys.argv[2:])
''')


# Cases run as a user's script does: with compiled bytecode cached (this development machine sets
# PYTHONDONTWRITEBYTECODE, which would make every case recompile labrun's editable sources but not Sacred's,
# which pip compiled when it installed it).
CASE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_case(tool: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "case.py")
        with open(script, "w") as f:
            f.write(CASE)
        out = subprocess.run([sys.executable, script, tool, str(n), os.path.join(tmp, "store")],
                             capture_output=True, text=True, timeout=1800, cwd=tmp, env=CASE_ENV)
        if out.returncode != 0:
            return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
        return json.loads(out.stdout.strip().splitlines()[-1])


def trivial_run(tool: str, repeats: int) -> float:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "trivial.py")
        with open(script, "w") as f:
            f.write(TRIVIAL)
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, script, tool, "-F", os.path.join(tmp, "store"), "-l", "ERROR"],
                           check=True, capture_output=True, cwd=tmp, timeout=300, env=CASE_ENV)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", default="10000,100000,1000000")
    parser.add_argument("--trivial-repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for tool in ("labrun", "sacred"):  # warm-up: bytecode caches written, files in the page cache
        run_case(tool, 1000)
    empty = {tool: statistics.median(run_case(tool, 0)["total"] for _ in range(5)) for tool in ("labrun", "sacred")}
    print(f"a run logging no point, end to end (median of 5): labrun {empty['labrun'] * 1000:.1f} ms, "
          f"sacred {empty['sacred'] * 1000:.1f} ms")
    print(f"{'points':>9} {'tool':>7} {'in-loop us/pt':>14} {'end-to-end us/pt':>17} {'beyond empty run':>17} "
          f"{'counted':>9} {'peak RSS MB':>12}")
    for n in [int(p) for p in args.points.split(",")]:
        results = {tool: run_case(tool, n) for tool in ("labrun", "sacred")}
        for tool, r in results.items():
            if "error" in r:
                print(f"{n:>9} {tool:>7} error: {r['error']}")
                continue
            if r["counted"] != n:  # a per-point figure over points that never reached the store means nothing
                r["error"] = f"its metrics.json holds {r['counted']} of {n} points ({r['total']:.1f} s)"
                print(f"{n:>9} {tool:>7} error: {r['error']}")
                continue
            per_point = r["total"] / max(r["counted"], 1) * 1e6
            beyond = (r["total"] - empty[tool]) / max(r["counted"], 1) * 1e6
            print(f"{n:>9} {tool:>7} {r['loop'] / n * 1e6:>14.3f} {per_point:>17.3f} {beyond:>17.3f} "
                  f"{r['counted']:>9} {r['rss_mb']:>12.1f}")
        lab, sac = results["labrun"], results["sacred"]
        if "error" not in lab and "error" not in sac:
            print(f"{'':>9} {'ratio':>7} {sac['loop'] / lab['loop']:>13.1f}x "
                  f"{(sac['total'] / max(sac['counted'], 1)) / (lab['total'] / max(lab['counted'], 1)):>16.1f}x"
                  f" (Sacred / labrun; end-to-end per point counted back)")
    lab_trivial = trivial_run("labrun", args.trivial_repeats)
    sac_trivial = trivial_run("sacred", args.trivial_repeats)
    print(f"trivial run with the file store, whole process (median of {args.trivial_repeats}): "
          f"labrun {lab_trivial * 1000:.0f} ms, sacred {sac_trivial * 1000:.0f} ms, "
          f"ratio {sac_trivial / lab_trivial:.1f}x")


if __name__ == "__main__":
    main()
