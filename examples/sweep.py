"""A grid of configs in one command: the runs of a sweep, resumable, two at a time.

    python examples/sweep.py -M -F runs with lr=0.3,0.1,0.03 model=linear,quadratic      # 6 runs
    python examples/sweep.py -M -F runs -j 2 with lr=0.3,0.1,0.03 model=linear,quadratic # 0 to run now
    python examples/sweep.py -M -F runs with 'steps=range(100,401,100)' small,large       # steps and named configs
    python examples/sweep.py -M -F runs with examples/sweep.yaml                          # a sweep file

On a cluster (docs/launchers.md), with a store every worker reaches:

    python examples/sweep.py -M -j 8 -m mongodb://db:27017/sacred --launcher ray with lr=0.3,0.1 model=linear
    python examples/sweep.py -M -j 8 -F /shared/runs --launcher slurm:partition=cpu,shared_fs=true with lr=0.3,0.1

Each run is a full run (its own record, provenance and seed); a second invocation of the same sweep runs only
what is not COMPLETED in the store yet. From Python: ``ex.sweep({"lr": [0.3, 0.1]}, jobs=2, options={"-F": "runs"})``.
"""

import math
import random

from labrun import Experiment

ex = Experiment("sweep_example")


@ex.config
def config():
    lr = 0.1  # learning rate
    model = "linear"  # linear or quadratic features
    steps = 200  # gradient steps
    samples = 200  # synthetic training points


@ex.named_config
def small():
    """Few points: fast and noisy."""
    samples = 50


@ex.named_config
def large():
    """More points."""
    samples = 800


def features(x, model):
    return [1.0, x, x * x] if model == "quadratic" else [1.0, x]


@ex.automain
def main(lr, model, steps, samples, _run, _seed):
    """Fit y = sin(x) by gradient descent on squared error; the final loss is the result."""
    if model not in ("linear", "quadratic"):
        raise ValueError(f"unknown model {model!r}: use linear or quadratic")
    rnd = random.Random(_seed)
    data = [(x, math.sin(x) + rnd.gauss(0, 0.05)) for x in (rnd.uniform(-1.5, 1.5) for _ in range(samples))]
    weights = [0.0] * len(features(0.0, model))
    loss = float("nan")
    for step in range(steps):
        grad = [0.0] * len(weights)
        loss = 0.0
        for x, y in data:
            phi = features(x, model)
            error = sum(w * f for w, f in zip(weights, phi)) - y
            loss += error * error / len(data)
            for i, f in enumerate(phi):
                grad[i] += 2 * error * f / len(data)
        weights = [w - lr * g for w, g in zip(weights, grad)]
        _run.log_scalar("loss", loss, step)
    return loss
