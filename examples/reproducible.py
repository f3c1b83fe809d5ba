"""A deterministic experiment to record and re-create with `labrun rerun`.

    python examples/reproducible.py -F runs with noise=0.2
    labrun rerun runs/1 --check        # same code, config and seed: same result and metrics

The run records its sources, git state (diff included), packages and host; `labrun rerun` re-executes it
from that exact code in a temporary folder, even after the working tree has changed.
"""

import random

from labrun import Experiment

ex = Experiment("reproducible")


@ex.config
def config():
    steps = 50     # optimisation steps
    lr = 0.1       # step size
    noise = 0.1    # gradient noise, drawn from the run's seeded random generator


@ex.automain
def main(steps, lr, noise, _run, _rnd):
    """Noisy gradient descent on (w - 3)^2: the result depends on the seed, so a rerun shows it was kept."""
    w = 0.0
    for step in range(steps):
        grad = 2 * (w - 3) + random.gauss(0, noise) + _rnd.uniform(-noise, noise)
        w -= lr * grad
        _run.log_scalar("w", w, step)
        _run.log_scalar("loss", (w - 3) ** 2, step)
    return w
