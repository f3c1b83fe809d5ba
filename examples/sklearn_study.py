"""Several scikit-learn models on the digits data set, recorded with labrun, then compared (docs/browse.md).

    python examples/sklearn_study.py -M -F runs with model=logistic,forest,svm
    labrun ls runs
    labrun compare runs 1 2 3
    labrun plot runs --metric test_accuracy --output runs/curves.png

Each run logs its accuracy on the test set as the training set grows (a learning curve: ``test_accuracy``
by number of training examples), its final accuracies, and stores the fitted model as ``model.pkl``.
"""

import os
import pickle
import tempfile

from labrun import Experiment

ex = Experiment("digits")


@ex.config
def config():
    model = "logistic"  # logistic, forest or svm
    C = 1.0  # inverse regularisation strength (logistic, svm)
    trees = 100  # number of trees (forest)
    test_size = 0.25  # fraction of the data held out
    sizes = [100, 200, 400, 800, 1200]  # training set sizes of the learning curve


def build(model, C, trees, seed):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if model == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    if model == "forest":
        return RandomForestClassifier(n_estimators=trees, random_state=seed)
    if model == "svm":
        return make_pipeline(StandardScaler(), SVC(C=C, random_state=seed))
    raise ValueError(f"unknown model {model!r}: use logistic, forest or svm")


@ex.automain
def main(model, C, trees, test_size, sizes, _run, _seed):
    """Fit on growing training sets, log the learning curve, store the final model."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=_seed, stratify=y)
    fitted = None
    for size in [s for s in sizes if s <= len(X_train)] + [len(X_train)]:
        fitted = build(model, C, trees, _seed).fit(X_train[:size], y_train[:size])
        _run.log_scalar("test_accuracy", fitted.score(X_test, y_test), size)
    _run.log_scalar("train_accuracy", fitted.score(X_train, y_train))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.pkl")
        with open(path, "wb") as f:
            pickle.dump(fitted, f)
        _run.add_artifact(path, "model.pkl")
    return fitted.score(X_test, y_test)
