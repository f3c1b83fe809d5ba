"""Config scopes, the precedence stack, and the checks on entries and updates."""

import logging

import numpy as np
import pytest

from labrun import ConfigAddedError, Experiment, Ingredient, NamedConfigNotFoundError
from labrun.errors import ConfigError


def config_of(ex, command=None, **kwargs):
    """Resolve the config through print_config's run (no main needed)."""
    return ex.run("print_config", **kwargs).config


# -- scopes ----------------------------------------------------------------------------------------------------
def test_scope_locals_become_entries_and_helpers_do_not():
    ex = Experiment("t")

    @ex.config
    def cfg():
        import math
        lr = 0.1
        layers = [8, 8]
        _private = 3
        def helper():
            return 1
        class Klass:
            pass
        scaled = math.floor(lr * 100)

    config = config_of(ex)
    assert config["lr"] == 0.1 and config["layers"] == [8, 8] and config["scaled"] == 10
    for name in ["math", "_private", "helper", "Klass"]:
        assert name not in config
    assert isinstance(config["seed"], int)


def test_derived_entries_follow_fixed_values():
    ex = Experiment("t")

    @ex.config
    def cfg():
        width = 4
        hidden = 2 * width

    assert config_of(ex, config_updates={"width": 8})["hidden"] == 16
    assert config_of(ex)["hidden"] == 8


def test_comprehensions_and_closures_see_entries():
    ex = Experiment("t")
    depth = 3

    @ex.config
    def cfg():
        width = 4
        sizes = [width * i for i in range(depth)]

    assert config_of(ex, config_updates={"width": 10})["sizes"] == [0, 10, 20]


def test_nested_dict_update_merges_and_survives_reassignment():
    ex = Experiment("t")

    @ex.config
    def cfg():
        optimizer = {"name": "sgd", "lr": 0.1}
        optimizer["lr"] = 0.2
        rate = optimizer["lr"]

    config = config_of(ex, config_updates={"optimizer.lr": 0.5})
    assert config["optimizer"] == {"name": "sgd", "lr": 0.5}
    assert config["rate"] == 0.5


def test_scope_parameter_that_names_nothing_is_refused():
    ex = Experiment("t")

    @ex.config
    def cfg(lr):
        a = 1

    @ex.config
    def later(lrr):  # a typo of an earlier entry
        b = 2

    with pytest.raises(ConfigError, match="takes 'lr', which is neither"):
        config_of(ex)
    ex.config_layers.pop(0)
    ex.add_config(lr=0.1)
    ex.config_layers.insert(0, ex.config_layers.pop())
    with pytest.raises(ConfigError, match="takes 'lrr'.*did you mean 'lr'"):
        config_of(ex)


def test_docs_from_comments_on_and_above_assignments():
    ex = Experiment("t")

    @ex.config
    def cfg():
        lr = 0.1  # learning rate
        # number of
        # passes over the data
        epochs = 3
        plain = 1

    docs = ex.run("print_config").config_modifications.docs
    assert docs[("lr",)] == "learning rate"
    assert docs[("epochs",)] == "number of passes over the data"
    assert ("plain",) not in docs


def test_config_scope_is_not_callable():
    ex = Experiment("t")

    @ex.config
    def cfg():
        a = 1

    with pytest.raises(TypeError, match="config scope"):
        cfg()


# -- precedence ------------------------------------------------------------------------------------------------
def make_stack_experiment(tmp_path):
    from labrun import experiment

    @experiment(name="stack")
    def main(a="default", b="default", c="default", d="default", e="default", from_scope=None):
        return a

    @main.config
    def scope():
        b = "scope"
        c = "scope"
        d = "scope"
        e = "scope"
        double_e = e * 2

    @main.config_hook
    def hook(config, command_name, logger):
        return {"c": "hook", "d": "hook", "e": "hook"}

    @main.named_config
    def named():
        d = "named"
        e = "named"

    return main


def test_precedence_stack(tmp_path):
    main = make_stack_experiment(tmp_path)
    config = main.run("print_config", named_configs=["named"], config_updates={"e": "update"}).config
    assert (config["a"], config["b"], config["c"], config["d"], config["e"]) == (
        "default", "scope", "hook", "named", "update")
    assert config["double_e"] == "updateupdate"


def test_hooks_results_recompute_derived_entries(tmp_path):
    main = make_stack_experiment(tmp_path)
    assert main.run("print_config").config["double_e"] == "hookhook"


def test_named_configs_apply_left_to_right_and_read_normal_scopes():
    ex = Experiment("t")

    @ex.config
    def cfg():
        width = 8
        epochs = 10

    @ex.named_config
    def wide():
        width = width * 4  # noqa: F821 (reads the value the normal scope computed)

    @ex.named_config
    def short():
        epochs = 1
        width = 2

    assert config_of(ex, named_configs=["wide"])["width"] == 32
    config = config_of(ex, named_configs=["wide", "short"])
    assert config["width"] == 2 and config["epochs"] == 1
    assert config_of(ex, named_configs=["short", "wide"])["width"] == 2 * 4  # wide reads short's width


def test_unknown_named_config_lists_names():
    ex = Experiment("t")

    @ex.named_config
    def small():
        a = 1

    with pytest.raises(NamedConfigNotFoundError, match=r"'smal'.*did you mean 'small'.*available: small"):
        config_of(ex, named_configs=["smal"])


def test_add_config_dict_file_and_keywords(tmp_path):
    (tmp_path / "base.yaml").write_text("lr: 0.3\nmodel:\n  depth: 2\n")
    (tmp_path / "big.json").write_text('{"model": {"depth": 50}}')
    ex = Experiment("t")
    ex.add_config({"lr": 0.1, "batch": 32})
    ex.add_config(str(tmp_path / "base.yaml"))
    ex.add_config(momentum=0.9)
    ex.add_named_config("big", str(tmp_path / "big.json"))
    config = config_of(ex, named_configs=["big"])
    assert config["lr"] == 0.3 and config["batch"] == 32 and config["momentum"] == 0.9
    assert config["model"] == {"depth": 50}


def test_ingredient_config_subtree_named_configs_and_captured_functions():
    data = Ingredient("dataset")

    @data.config
    def data_cfg():
        name = "mnist"
        size = 1000

    @data.named_config
    def tiny():
        size = 10

    @data.capture
    def load(name, size):
        return f"{name}:{size}"

    ex = Experiment("t", ingredients=[data])

    @ex.main
    def main():
        return load()

    run = ex.run(named_configs=["dataset.tiny"], config_updates={"dataset.name": "cifar"})
    assert run.result == "cifar:10"
    assert run.config["dataset"] == {"name": "cifar", "size": 10}


# -- checks ----------------------------------------------------------------------------------------------------
def test_unknown_update_raises_config_added_error_with_suggestion(caplog):
    ex = Experiment("t")

    @ex.config
    def cfg():
        lr = 0.1
        optimizer = {"momentum": 0.9}

    with pytest.raises(ConfigAddedError, match=r"'lrr' \(did you mean 'lr'\?\)"):
        config_of(ex, config_updates={"lrr": 1})
    assert config_of(ex, config_updates={"lrr": 1}, options={"--force": True})["lrr"] == 1
    # A new key inside an existing dict entry is Sacred's warning, not an error; a likely typo is named.
    assert config_of(ex, config_updates={"optimizer.momentun": 1})["optimizer"] == {"momentum": 0.9, "momentun": 1}
    assert ('Added new config entry: "optimizer.momentun" (did you mean \'optimizer.momentum\'?)'
            in caplog.text)
    assert config_of(ex, config_updates={"optimizer": {"nesterov": True}})["optimizer"]["nesterov"] is True


def test_update_taken_by_a_captured_function_is_allowed():
    ex = Experiment("t")

    @ex.capture
    def build(depth=3):
        return depth

    @ex.main
    def main():
        return build()

    assert ex.run(config_updates={"depth": 7}).result == 7
    with pytest.raises(ConfigAddedError):
        ex.run(config_updates={"width": 7})


def test_type_change_by_an_update_is_an_error_and_by_a_named_config_a_warning(caplog):
    ex = Experiment("t")

    @ex.config
    def cfg():
        epochs = 10
        lr = 0.1

    @ex.named_config
    def wordy():
        epochs = "ten"

    with pytest.raises(ConfigError, match="gives the int entry 'epochs' a str"):
        ex.run("print_config", config_updates={"epochs": "ten"})
    with caplog.at_level(logging.WARNING):
        resolved = ex.run("print_config", config_updates={"lr": 1}, named_configs=["wordy"]).config_modifications
    assert "'epochs' changed type from int to str" in caplog.text
    assert "'lr'" not in caplog.text  # int for a float is the same kind
    assert ("epochs",) in resolved.typechanged and ("lr",) in resolved.modified


@pytest.mark.parametrize("key", ["a.b", "$where"])
def test_refused_keys(key):
    ex = Experiment("t")
    ex.add_config({"nested": {key: 1}})
    with pytest.raises(ConfigError, match="MongoDB refuses"):
        config_of(ex)


def test_values_become_json():
    ex = Experiment("t")

    @ex.config
    def cfg():
        scalar = np.float32(0.5)
        count = np.int64(3)
        array = np.arange(3)
        pair = (1, 2)

    config = config_of(ex)
    assert config["scalar"] == 0.5 and type(config["scalar"]) is float
    assert type(config["count"]) is int
    assert config["array"] == [0, 1, 2] and config["pair"] == [1, 2]


def test_unjsonable_value_is_refused_with_its_path():
    ex = Experiment("t")
    ex.add_config({"opt": {"fn": object()}})
    with pytest.raises(ConfigError, match=r"'opt.fn' is a builtins.object.*cannot be stored as JSON"):
        config_of(ex)


def test_seed_given_or_random():
    ex = Experiment("t")
    assert config_of(ex, config_updates={"seed": 42})["seed"] == 42
    seeds = {config_of(ex)["seed"] for _ in range(3)}
    assert len(seeds) == 3


def test_list_element_and_replace_updates():
    ex = Experiment("t")

    @ex.config
    def cfg():
        sizes = [1, 2, 3]
        opt = {"name": "sgd", "lr": 0.1}

    from labrun.config.updates import parse_update_tokens
    from labrun.cli.options import Options

    parsed = parse_update_tokens(["sizes.1=20", "opt:={'name': 'adam'}"])
    run = ex._create_run("print_config", parsed.fixed, [], None, None, Options())
    assert run.config["sizes"] == [1, 20, 3]
    assert run.config["opt"] == {"name": "adam"}
    merged = config_of(ex, config_updates={"opt": {"name": "adam"}})
    assert merged["opt"] == {"name": "adam", "lr": 0.1}
    with pytest.raises(ConfigError, match="'sizes' has 3 elements"):
        config_of(ex, config_updates={"sizes.5": 0})


def test_a_named_config_that_sets_an_unknown_key_is_named_in_the_error():
    ex = Experiment("t")

    @ex.config
    def cfg():
        lr = 0.1

    @ex.named_config
    def fast():
        epochs = 1

    @ex.main
    def main(lr):
        return lr

    with pytest.raises(ConfigAddedError, match="the named config 'fast' sets 'epochs', which no config scope"):
        ex.run(named_configs=["fast"])
    with pytest.raises(ConfigAddedError, match="the update 'epoch' names no config entry"):
        ex.run(config_updates={"epoch": 1})
