"""``labrun ls`` over a big file store, against the floor: a plain Python loop that ``json.load``s every
run.json of the same store.

Run on demand (never in the test suite; timings are noisy):

    python bench/bench_ls.py [--runs 10000] [--repeats 5] [--mongo mongodb://127.0.0.1:27017/bench_ls]

The store is made from one real run (recorded here with the file store: its run.json holds the full
environment, host and git record, as every run's does), copied RUNS times with a different config and
metric summary each. Measured in this process, after one warm-up pass (the files are in the page cache,
as on a machine that just wrote them):

- floor: ``os.scandir`` of the store and ``json.load`` of every run.json;
- ``labrun ls``: the whole command (reading every run.json, finding the differing config entries,
  filtering, sorting, formatting the table), its output thrown away: all rows (what a pipe gets), the
  newest 50 (a terminal's default), and with ``--where``.

With ``--mongo URL``, the same runs are also inserted there and ``labrun ls URL`` is timed (one query).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

EXPERIMENT = textwrap.dedent('''
    from labrun import Experiment
    ex = Experiment("bench_ls")

    @ex.config
    def cfg():
        lr = 0.1
        model = {"depth": 2, "width": 64}

    @ex.automain
    def main(lr, model, _run):
        for step in range(100):
            _run.log_scalar("loss", 1 / (1 + step * lr))
        return lr
''')


def make_store(folder: str, runs: int) -> str:
    """One real run, then RUNS copies of its folder with their own config and metric summary."""
    with open(os.path.join(folder, "exp.py"), "w") as f:
        f.write(EXPERIMENT)
    subprocess.run([sys.executable, "exp.py", "-F", "seed_store", "-l", "ERROR"], cwd=folder, check=True,
                   env={**os.environ, "LABRUN_JOURNAL_DIR": os.path.join(folder, "journal")})
    template = os.path.join(folder, "seed_store", "1")
    with open(os.path.join(template, "run.json")) as f:
        record = json.load(f)
    with open(os.path.join(template, "config.json")) as f:
        config = json.load(f)
    store = os.path.join(folder, "store")
    os.makedirs(store)
    for n in range(1, runs + 1):
        run_dir = os.path.join(store, str(n))
        os.makedirs(run_dir)
        config = {**config, "lr": round(0.001 * (n % 100 + 1), 6), "model": {"depth": n % 7, "width": 64},
                  "seed": n}
        loss = record["labrun"]["metrics"]["loss"]
        record["labrun"]["metrics"]["loss"] = {**loss, "last": 1 / (1 + n % 100), "min": 1 / (2 + n % 100)}
        record["status"] = "COMPLETED" if n % 10 else "FAILED"
        with open(os.path.join(run_dir, "run.json"), "w") as f:
            json.dump(record, f, indent=2)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        shutil.copy(os.path.join(template, "cout.txt"), run_dir)
    return store


def floor(store: str) -> int:
    count = 0
    for entry in os.scandir(store):
        if entry.is_dir():
            with open(os.path.join(entry.path, "run.json"), encoding="utf-8") as f:
                json.load(f)
            count += 1
    return count


def labrun_ls(store: str, *where: str, limit: str = "0") -> None:
    from labrun.browse.ls import list_runs

    list_runs(store, list(where), None, None, limit, "table", out=io.StringIO())


def timed(action, repeats: int) -> float:
    action()  # warm-up: page cache, imports
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def to_mongo(store: str, url: str) -> None:
    import pymongo

    from labrun.stores.mongo_format import encode_keys

    client = pymongo.MongoClient(url)
    db = client.get_default_database()
    db.runs.drop()
    documents = []
    for name in os.listdir(store):
        with open(os.path.join(store, name, "run.json")) as f:
            record = json.load(f)
        with open(os.path.join(store, name, "config.json")) as f:
            record["config"] = json.load(f)
        record["_id"] = int(name)
        documents.append(encode_keys(record))
    db.runs.insert_many(documents)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mongo", help="a MongoDB URL with a database to fill (its runs collection is replaced)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = make_store(folder, args.runs)
        size = os.path.getsize(os.path.join(store, "1", "run.json"))
        base = timed(lambda: floor(store), args.repeats)
        ls = timed(lambda: labrun_ls(store), args.repeats)
        where = timed(lambda: labrun_ls(store, "config.lr<0.05", "status=COMPLETED"), args.repeats)
        first_50 = timed(lambda: labrun_ls(store, limit="50"), args.repeats)
        print(f"{args.runs} runs (run.json {size / 1024:.1f} KB each), median of {args.repeats}:")
        print(f"  floor (scandir + json.load of every run.json): {base:.3f} s")
        print(f"  labrun ls, all {args.runs} rows (as when piped): {ls:.3f} s ({ls / base:.2f}x the floor)")
        print(f"  labrun ls, the newest 50 (as on a terminal):   {first_50:.3f} s ({first_50 / base:.2f}x)")
        print(f"  labrun ls --where config.lr<0.05 --where status=COMPLETED: {where:.3f} s ({where / base:.2f}x)")
        if args.mongo:
            to_mongo(store, args.mongo)
            mongo = timed(lambda: labrun_ls(args.mongo), args.repeats)
            print(f"  labrun ls on MongoDB (one query):              {mongo:.3f} s")


if __name__ == "__main__":
    main()
