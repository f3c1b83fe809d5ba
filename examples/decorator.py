"""The decorator style: one function is the experiment, its keyword defaults are the config.

    python examples/decorator.py
    python examples/decorator.py with lr=0.5 epochs=5
    python examples/decorator.py print_config with epochs=5
"""

from labrun import experiment


@experiment(name="decorated")
def train(lr=0.1, epochs=3, decay=0.5, _log=None):
    """Decay a learning rate over a few epochs and return the last one."""
    for epoch in range(epochs):
        lr *= decay
        _log.info("epoch %d: lr %.5f", epoch, lr)
    return lr
# When this file runs as a script the decorated function runs at once, so it is the last statement.
