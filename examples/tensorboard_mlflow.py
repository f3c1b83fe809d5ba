"""One run, seen in TensorBoard and in MLflow (and kept in a file store).

    python examples/tensorboard_mlflow.py -F runs --tensorboard runs/tensorboard \
        --mlflow sqlite:///$PWD/runs/mlflow.db with lr=0.2
    tensorboard --logdir runs/tensorboard --host 127.0.0.1                         # SCALARS, HPARAMS, TEXT
    mlflow ui --backend-store-uri sqlite:///$PWD/runs/mlflow.db --host 127.0.0.1   # params, metrics, artifacts

Everything it writes goes under runs/ (ignored by git), so the checkout stays clean and later runs from it
are not recorded as dirty.

Run it a few times with different lr: TensorBoard's HPARAMS tab and MLflow's run comparison put them side
by side.
"""

import json
import os
import tempfile
import math

from labrun import Experiment

ex = Experiment("tb_mlflow_example")


@ex.config
def config():
    lr = 0.1
    optimizer = {"name": "sgd", "momentum": 0.9}  # shown as optimizer.name, optimizer.momentum
    steps = 300


@ex.main
def train(lr, optimizer, steps, _run):
    loss = 1.0
    for step in range(steps):
        loss *= 1 - lr * (1 - optimizer["momentum"] / 2) * 0.05
        _run.log_scalar("train/loss", loss)
        if step % 50 == 49:
            _run.log_scalar("val/accuracy", 1 - math.exp(-step * lr / 20), step=step)
    with tempfile.TemporaryDirectory() as folder:  # the artifact is copied when added: nothing is left behind
        summary = os.path.join(folder, "summary.json")
        with open(summary, "w") as f:
            json.dump({"final_loss": loss}, f)
        _run.add_artifact(summary)
    print(f"final loss {loss:.4f}")
    return loss


if __name__ == "__main__":
    ex.run_commandline()
