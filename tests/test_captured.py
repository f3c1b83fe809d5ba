"""Captured functions inside and outside runs."""

import logging

import numpy as np
import pytest

from labrun import Experiment, MissingConfigError
from labrun.errors import ReadOnlyConfigError


@pytest.fixture
def ex():
    ex = Experiment("cap")

    @ex.config
    def cfg():
        lr = 0.1
        layers = [4, 4]
        optimizer = {"name": "sgd", "momentum": 0.9}

    return ex


def test_missing_arguments_come_from_config_and_explicit_ones_win(ex):
    @ex.capture
    def f(lr, layers, extra=5):
        return lr, layers, extra

    @ex.main
    def main():
        return f(), f(0.5), f(extra=1, lr=2)

    default, positional, keyword = ex.run().result
    assert default == (0.1, [4, 4], 5)
    assert positional == (0.5, [4, 4], 5)
    assert keyword == (2, [4, 4], 1)


def test_outside_a_run_a_captured_function_is_plain(ex):
    @ex.capture
    def f(lr, scale=2):
        """doc"""
        return lr * scale

    assert f(3) == 6
    assert f.__name__ == "f" and f.__doc__ == "doc"
    import inspect

    assert list(inspect.signature(f).parameters) == ["lr", "scale"]


def test_prefix_reads_a_subtree(ex):
    @ex.capture(prefix="optimizer")
    def make(name, momentum):
        return name, momentum

    @ex.main
    def main():
        return make()

    assert ex.run(config_updates={"optimizer.name": "adam"}).result == ("adam", 0.9)


def test_config_view_is_read_only(ex):
    @ex.main
    def main(_config, layers):
        assert _config["lr"] == 0.1
        with pytest.raises(ReadOnlyConfigError, match="read-only"):
            _config["lr"] = 1
        with pytest.raises(ReadOnlyConfigError, match="'layers'"):
            layers.append(3)
        with pytest.raises(ReadOnlyConfigError):
            _config["optimizer"]["name"] = "x"
        return "checked"

    assert ex.run().result == "checked"


def test_missing_config_error_names_every_missing_argument(ex):
    @ex.capture
    def f(lr, batch_size, n_epochs):
        return 1

    @ex.main
    def main():
        return f()

    with pytest.raises(MissingConfigError) as info:
        ex.run()
    message = str(info.value)
    assert "'batch_size'" in message and "'n_epochs'" in message
    assert "layers" in message and "lr" in message  # keys available


def test_log_is_named_after_the_function(ex):
    @ex.capture
    def train_epoch(_log):
        return _log

    @ex.main
    def main():
        return train_epoch()

    logger = ex.run().result
    assert isinstance(logger, logging.Logger) and logger.name == "train_epoch"


def test_seed_is_fresh_per_call_and_deterministic_given_the_master_seed(ex):
    @ex.capture
    def draw(_seed):
        return _seed

    @ex.main
    def main():
        return [draw() for _ in range(3)]

    first = ex.run(config_updates={"seed": 7}).result
    again = ex.run(config_updates={"seed": 7}).result
    other = ex.run(config_updates={"seed": 8}).result
    assert len(set(first)) == 3
    assert first == again and first != other


def test_rnd_is_a_seeded_numpy_generator(ex):
    @ex.capture
    def sample(_rnd):
        return _rnd

    @ex.main
    def main():
        return sample().random()

    assert isinstance(ex.run(config_updates={"seed": 1}).result, float)
    assert ex.run(config_updates={"seed": 1}).result == ex.run(config_updates={"seed": 1}).result

    @ex.capture
    def kind(_rnd):
        return _rnd

    @ex.command
    def which():
        return kind()

    assert isinstance(ex.run("which").result, np.random.Generator)


def test_run_is_injected(ex):
    @ex.main
    def main(_run):
        return _run

    run = ex.run()
    assert run.result is run
