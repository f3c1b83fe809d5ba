"""A Sacred script moved to labrun: only the import lines changed (docs/sacred.md).

    python examples/from_sacred.py -F runs --tag baseline with seed=1
    python examples/from_sacred.py -F runs with careful
    labrun ls runs
"""
import logging

import numpy as np

from labrun import Experiment, Ingredient, SETTINGS, cli_option, host_info_gatherer
from labrun.utils import SacredInterrupt, apply_backspaces_and_linefeeds

SETTINGS.CONFIG.READ_ONLY_CONFIG = True  # Sacred's settings keep their meaning

data = Ingredient("data")


@data.config
def data_cfg():
    points = 200
    noise = 0.1


@data.capture
def make_data(points, noise, _rnd):
    x = np.linspace(0, 1, points)
    return x, 3 * x + 1 + noise * _rnd.standard_normal(points)


@cli_option("-t", "--tag")
def tag(value, run):
    """A tag stored in the run's info."""
    run.info["tag"] = value


@host_info_gatherer("numpy_version")
def numpy_version():
    return np.__version__


class Diverged(SacredInterrupt):
    STATUS = "DIVERGED"


ex = Experiment("fit_line", ingredients=[data], additional_cli_options=[tag],
                additional_host_info=[numpy_version])
ex.captured_out_filter = apply_backspaces_and_linefeeds
ex.logger = logging.getLogger("fit")
ex.logger.addHandler(logging.StreamHandler())
ex.logger.setLevel(logging.INFO)


@ex.config
def cfg(data):
    lr = 0.5
    steps = 200
    log_every = steps // 10


@ex.named_config
def careful(lr):
    lr = lr / 10  # a named config reads the normal config (Sacred's cannot)


@ex.automain
def main(lr, steps, log_every, _run, _log):
    x, y = make_data()
    w, b = 0.0, 0.0
    for step in range(steps):
        error = w * x + b - y
        w -= lr * 2 * np.mean(error * x)
        b -= lr * 2 * np.mean(error)
        loss = float(np.mean(error ** 2))
        if not np.isfinite(loss):
            raise Diverged()
        if step % log_every == 0:
            _run.log_scalar("loss", loss, step)
            _log.info("step %d: loss %.4f", step, loss)
    _run.info["fit"] = (round(w, 3), round(b, 3))  # stored as Sacred stores a tuple
    return np.float64(loss)
