"""A minimal labrun experiment in Sacred's style.

    python examples/quickstart.py                       # run with the defaults
    python examples/quickstart.py with lr=0.1 fast      # override an entry, use a named config
    python examples/quickstart.py print_config with width=16
    python examples/quickstart.py -F runs && labrun ls runs   # record it in a file store, list the runs
"""

from labrun import Experiment

ex = Experiment("quickstart")


@ex.config
def config():
    lr = 0.01  # learning rate
    width = 8  # hidden units
    hidden = 2 * width  # derived: follows any override of width
    epochs = 3
    optimizer = {"name": "sgd", "momentum": 0.9}


@ex.named_config
def fast():
    """Fewer epochs for a smoke test."""
    epochs = 1


@ex.capture
def train_step(epoch, lr, hidden, _rnd):
    """Pretend to train for one epoch; the loss depends only on the config and the seed."""
    noise = float(_rnd.random()) * 0.01
    return 1.0 / (1 + epoch * lr * hidden) + noise


@ex.automain
def main(epochs, _log, _run):
    loss = None
    for epoch in range(epochs):
        loss = train_step(epoch)
        _run.log_scalar("loss", loss, epoch)
        _log.info("epoch %d: loss %.4f", epoch, loss)
    return loss
