"""The decorator style: one function is the experiment; its keyword defaults are the lowest config layer,
a config scope and named configs come as arguments.

    python examples/decorator.py
    python examples/decorator.py with lr=0.5 epochs=5
    python examples/decorator.py with short                  # a named config
    python examples/decorator.py print_config with epochs=5  # 'final' follows epochs
    python examples/decorator.py -M -F runs with decay=0.5,0.9 short,long

From Python (``from decorator import train``): ``train(lr=0.5)`` runs a recorded run and returns its result;
``train.run(config_updates={"lr": 0.5}, named_configs=["short"])`` returns the Run.
"""

from labrun import experiment


def schedule():
    decay = 0.8                        # overrides the function's default
    final = 0.1 * decay ** 3           # derived: follows any update of decay


def short():
    """A quick smoke test."""
    epochs = 1


def long():
    epochs = 20


@experiment(name="decorated", config=schedule, named_configs=[short, long])
def train(lr=0.1, epochs=3, decay=0.5, final=None, _log=None):
    """Decay a learning rate over a few epochs and return the last one."""
    for epoch in range(epochs):
        lr *= decay
        _log.info("epoch %d: lr %.5f", epoch, lr)
    return lr
# When this file runs as a script the decorated function runs at once, so it is the last statement.
