"""Provenance capture at run start: labrun against Sacred, in a git repository of 1,000 files with changes.

Run on demand, in an environment that also has Sacred (never in the test suite; timings are noisy):

    python3 -m venv /tmp/benchenv && /tmp/benchenv/bin/pip install -e . sacred
    /tmp/benchenv/bin/python bench/bench_provenance.py [--files 1000] [--repeats 7]

The repository holds FILES Python modules in 20 packages, all committed; then 20 of them are changed and 5
new modules added, uncommitted. The experiment imports 40 of the modules. Each measurement runs in a fresh
process and times the first capture there, lazy imports included, as a run pays it:
labrun's ``Experiment.provenance()`` (sources, git status and diff, environment, host, in parallel) and
Sacred's ``gather_sources_and_dependencies`` plus ``get_host_info`` (what Sacred does for a run).
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

CASE = textwrap.dedent('''
    import json, sys, time
    tool = sys.argv[1]
    if tool == "labrun":
        from labrun import Experiment
    else:
        from sacred import Experiment
        from sacred.host_info import get_host_info
    import imports_for_bench
    start = time.perf_counter()
    ex = Experiment("bench")  # Sacred gathers sources, dependencies and git state here
    if tool == "labrun":
        found = ex.provenance()
        summary = {"sources": len(found["sources"]), "dirty": found["repositories"][0]["dirty"],
                   "diff_bytes": len(found["repositories"][0]["diff"] or ""),
                   "distributions": len(found["environment"]["distributions"])}
    else:
        get_host_info()
        summary = {"sources": len(ex.sources), "dependencies": len(ex.dependencies)}
    print(json.dumps({"seconds": time.perf_counter() - start, **summary}))
''')


def git(root: str, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run(["git", "-C", root, *args], check=True, capture_output=True, env=env)


def make_repository(root: str, files: int) -> None:
    body = "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(30))  # ~1 KB a file
    for i in range(files):
        package = os.path.join(root, f"pkg{i % 20}")
        os.makedirs(package, exist_ok=True)
        with open(os.path.join(package, f"mod{i}.py"), "w") as f:
            f.write(body)
    for i in range(20):
        open(os.path.join(root, f"pkg{i}", "__init__.py"), "w").close()
    with open(os.path.join(root, "imports_for_bench.py"), "w") as f:
        f.write("".join(f"import pkg{i % 20}.mod{i}\n" for i in range(40)))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "bench")
    for i in range(0, 400, 20):  # 20 changed files
        with open(os.path.join(root, f"pkg{i % 20}", f"mod{i}.py"), "a") as f:
            f.write("CHANGED = True\n")
    with open(os.path.join(root, "bench_case.py"), "w") as f:  # untracked too
        f.write(CASE)
    for i in range(5):  # 5 more untracked modules
        with open(os.path.join(root, f"new{i}.py"), "w") as f:
            f.write(body)


def measure(tool: str, root: str) -> dict:
    out = subprocess.run([sys.executable, os.path.join(root, "bench_case.py"), tool], capture_output=True, text=True,
                         cwd=root)
    if out.returncode:
        sys.exit(f"{tool} case failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        make_repository(root, args.files)
        import importlib.util

        tools = ["labrun", "sacred"] if importlib.util.find_spec("sacred") else ["labrun"]
        for tool in tools:  # warm-up: bytecode caches written, files in the page cache
            measure(tool, root)
        times: dict[str, list[float]] = {tool: [] for tool in tools}
        for _ in range(args.repeats):
            for tool in tools:
                result = measure(tool, root)
                times[tool].append(result["seconds"])
        print(f"repository: {args.files} files, 20 changed and 6 untracked; labrun found {measure('labrun', root)}")
        for tool in tools:
            values = times[tool]
            print(f"{tool:7s} capture: median {statistics.median(values) * 1000:6.1f} ms "
                  f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f}, {args.repeats} fresh processes)")
        if "sacred" in times:
            ratio = statistics.median(times["sacred"]) / statistics.median(times["labrun"])
            print(f"labrun is {ratio:.1f}x faster than Sacred (which records no diff, environment or GPUs)")


if __name__ == "__main__":
    main()
