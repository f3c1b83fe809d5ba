"""Record runs in MongoDB and browse them in Omniboard.

    python examples/mongodb.py -m mongodb://localhost:27017/sacred with epochs=5
    omniboard -m localhost:27017:sacred            # then open http://localhost:9000

Without a database at hand, `pip install secantusdb` and
`python -m secantus --host 127.0.0.1 --port 27017 --storage-path ./mongo-data` serves one.
If the database is down, the run completes anyway and `labrun sync` delivers it later.
"""

import math
import random

from labrun import Experiment

ex = Experiment("mongodb_example")


@ex.config
def config():
    epochs = 3
    steps_per_epoch = 200
    lr = 0.05


@ex.main
def train(epochs, steps_per_epoch, lr, _run):
    loss = 2.0
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            loss = max(0.01, loss * (1 - lr * 0.1) + random.gauss(0, 0.01))
            _run.log_scalar("train.loss", loss)  # a dotted name: stored as is, shown by Omniboard
        _run.log_scalar("val.accuracy", 1 - math.exp(-epoch - 1), step=epoch)
        print(f"epoch {epoch}: loss {loss:.3f}")
    _run.info["best.epoch"] = epochs - 1  # a dotted key: encoded reversibly, not dropped
    return loss


if __name__ == "__main__":
    ex.run_commandline()
