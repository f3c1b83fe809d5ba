"""MongoDB delivery: a run logging POINTS points of one metric, labrun against Sacred's MongoObserver.

Run on demand, in an environment that also has Sacred (never in the test suite; timings are noisy):

    python3 -m venv /tmp/benchenv && /tmp/benchenv/bin/pip install -e '.[mongo]' sacred secantusdb
    /tmp/benchenv/bin/python bench/bench_mongo.py [--points 1000000] [--url mongodb://127.0.0.1:27017]

Without --url a SecantusDB server is started on a free loopback port (and stopped at the end). Each tool
runs in a fresh process; the figures are the wall time of the whole process, the points found in the
database afterwards, points per second delivered (points found / wall time), the process's CPU time (the
rest of the wall time is the server's), its peak RSS, and the longest wait between two iterations of the
training loop (the GIL held by a background thread). "unobserved" is the same loop run by labrun with no
observer: the loop's own baseline.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

CASE = textwrap.dedent('''
    import sys, time
    tool, url, db_name, points = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if tool in ("labrun", "unobserved"):
        from labrun import Experiment
        from labrun.observers import MongoObserver
    else:
        from sacred import Experiment
        from sacred.observers import MongoObserver
    ex = Experiment("bench_mongo")
    if tool != "unobserved":
        ex.observers.append(MongoObserver(url, db_name=db_name))

    @ex.main
    def main(_run):
        worst, last = 0.0, time.perf_counter()
        for i in range(points):
            _run.log_scalar("loss", i * 0.5)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now
        print(f"longest gap {worst * 1000:.1f}", flush=True)  # the training loop's longest wait, ms

    ex.run()
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
                               "--storage-path", os.path.join(folder, "db"), "--log-level", "ERROR"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"mongodb://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("SecantusDB did not start")


def points_stored(url: str, db_name: str) -> int:
    import pymongo

    client = pymongo.MongoClient(url)
    try:
        db = client[db_name]
        total = 0
        for doc in db.metrics.find({"name": "loss"}, {"count": 1, "values": 1}):
            total += doc["count"] if "count" in doc else len(doc.get("values", []))
        return total
    finally:
        client.close()


def measure(tool: str, url: str, points: int, folder: str) -> dict[str, float]:
    script = os.path.join(folder, "case.py")
    with open(script, "w") as f:
        f.write(CASE)
    db_name = f"bench_{tool}_{os.getpid()}"
    env = {**os.environ, "LABRUN_JOURNAL_DIR": os.path.join(folder, f"journal-{tool}"),
           "LABRUN_DELIVERY_TIMEOUT": "600"}
    with tempfile.TemporaryFile("w+") as err, tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, script, tool, url, db_name, str(points)], env=env, cwd=folder,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().strip().splitlines()
        out.seek(0)
        gaps = [float(line.split()[-1]) for line in out if line.startswith("longest gap")]
    stored = points_stored(url, db_name) if tool != "unobserved" else points
    failure = lines[-1] if proc.returncode and lines else ""
    return {"wall": wall, "stored": stored, "rate": stored / wall, "rss_mb": usage.ru_maxrss / 1024,
            "cpu": usage.ru_utime + usage.ru_stime, "gap_ms": gaps[0] if gaps else float("nan"),
            "exit": proc.returncode, "failure": failure}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--url", help="an existing server (default: start SecantusDB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mongo-") as folder:
        server = None
        url = args.url
        if not url:
            server, url = start_server(folder)
        try:
            results = {}
            for tool in ("unobserved", "labrun", "sacred"):
                try:
                    __import__("labrun" if tool == "unobserved" else tool)
                except ImportError:
                    print(f"{tool}: not installed here, skipped")
                    continue
                results[tool] = r = measure(tool, url, args.points, folder)
                print(f"{tool:10s} wall {r['wall']:6.1f} s  stored {r['stored']:>9,d} of {args.points:,d}  "
                      f"{r['rate']:>9,.0f} points/s  CPU {r['cpu']:5.1f} s  peak RSS {r['rss_mb']:5.0f} MB  "
                      f"longest loop gap {r['gap_ms']:5.1f} ms  exit {r['exit']}"
                      + (f"  ({r['failure'][:100]})" if r["failure"] else ""))
            if "labrun" in results and "sacred" in results:
                lab, sac = results["labrun"], results["sacred"]
                ratio = f"{lab['rate'] / sac['rate']:.1f}x" if sac["rate"] else "Sacred stored no point"
                print(f"points delivered per second, labrun/Sacred: {ratio}")
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)


if __name__ == "__main__":
    main()
