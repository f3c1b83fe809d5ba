"""A small model fit with config scopes and a named config (no TensorFlow)."""
from sacred import Experiment
from sacred.observers import FileStorageObserver

ex = Experiment("fit_line")
ex.observers.append(FileStorageObserver("fit_runs"))


@ex.config
def cfg():
    slope = 2.0
    steps = 5
    lr = 0.1


@ex.named_config
def careful():
    lr = 0.01


@ex.capture
def fit(slope, steps, lr, _run):
    w = 0.0
    for step in range(steps):
        w += lr * (slope - w)
        _run.log_scalar("w", w, step)
    return w


@ex.automain
def main():
    return round(fit(), 6)
