"""TensorBoard and MLflow delivery: one run logging POINTS points of one metric, end to end.

Run on demand (never in the test suite; timings are noisy):

    python3 -m venv /tmp/benchenv && /tmp/benchenv/bin/pip install -e '.[tensorboard,mlflow]' mlflow
    /tmp/benchenv/bin/python bench/bench_tensorboard_mlflow.py [--points 100000]

Each case runs in a fresh process: labrun with --tensorboard, labrun with --mlflow on a sqlite store (a new
one, whose first use creates MLflow's tables), and, for scale, MLflow's own fluent API logging the same
points with log_metric (one call a point, as a training loop would) and with one log_batch per 1,000 points.
End-to-end points per second are the points read back from the store divided by the process's wall time
from the start of the run call until it returned; peak RSS is that process's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

CASE = textwrap.dedent('''
    import json, resource, sys, time
    kind, n, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind.startswith("labrun"):
        from labrun import Experiment
        ex = Experiment("bench")

        @ex.main
        def main(_run):
            for i in range(n):
                _run.log_scalar("loss", i * 0.5)

        option = ["--tensorboard", target] if kind == "labrun-tensorboard" else ["--mlflow", target]
        start = time.perf_counter()
        ex.run_commandline(["bench", "--loglevel", "ERROR", *option])
        total = time.perf_counter() - start
    else:
        import mlflow
        from mlflow.entities import Metric
        mlflow.set_tracking_uri(target)
        start = time.perf_counter()
        with mlflow.start_run() as run:
            if kind == "mlflow-log_metric":
                for i in range(n):
                    mlflow.log_metric("loss", i * 0.5, step=i)
            else:
                client, now = mlflow.tracking.MlflowClient(), int(time.time() * 1000)
                for s in range(0, n, 1000):
                    batch = [Metric("loss", i * 0.5, now, i) for i in range(s, min(n, s + 1000))]
                    client.log_batch(run.info.run_id, batch)
        total = time.perf_counter() - start
    print(json.dumps({"total": total, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
''')

COUNT = textwrap.dedent('''
    import glob, sys
    kind, target = sys.argv[1], sys.argv[2]
    if kind == "labrun-tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        acc = EventAccumulator(glob.glob(target + "/*")[0], size_guidance={"scalars": 0})
        acc.Reload()
        print(len(acc.Scalars("loss")))
    else:
        from mlflow.tracking import MlflowClient
        client = MlflowClient(target)
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        print(sum(len(client.get_metric_history(r.info.run_id, "loss")) for r in runs))
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--mlflow-per-point-limit", type=int, default=20_000,
                        help="points for MLflow's log_metric case (one round trip each; slow)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="bench-tb-mlflow-") as folder:
        for kind in ("labrun-tensorboard", "labrun-mlflow", "mlflow-log_batch", "mlflow-log_metric"):
            points = min(args.points, args.mlflow_per_point_limit) if kind == "mlflow-log_metric" else args.points
            target = os.path.join(folder, kind)
            if "mlflow" in kind:
                target = f"sqlite:///{target}.db"
            case_env = {**env, "LABRUN_JOURNAL_DIR": os.path.join(folder, "journal"), "LABRUN_DELIVERY_TIMEOUT": "900"}
            out = subprocess.run([sys.executable, "-c", CASE, kind, str(points), target], env=case_env,
                                 capture_output=True, text=True, cwd=folder)
            if out.returncode:
                print(f"{kind}: failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            result = json.loads(out.stdout.strip().splitlines()[-1])
            counted = int(subprocess.run([sys.executable, "-c", COUNT, kind, target], env=env, capture_output=True,
                                         text=True).stdout.strip() or 0)
            print(f"{kind:20s} {points:>9,d} points  counted {counted:>9,d}  {result['total']:7.2f} s  "
                  f"{counted / result['total']:>9,.0f} points/s  peak RSS {result['rss_mb']:5.0f} MB")


if __name__ == "__main__":
    main()
