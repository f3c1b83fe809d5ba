"""An ingredient with its own config, captured function and command."""
from sacred import Experiment, Ingredient

data = Ingredient("data")


@data.config
def data_cfg():
    path = "train.csv"
    shuffle = True


@data.capture
def load(path, shuffle):
    print("loading {} (shuffle={})".format(path, shuffle))
    return 7


@data.command
def describe(path, rows=3):
    print("{} has {} rows".format(path, rows))


@data.config
def data_cfg_more():
    path = "valid.csv"


ex = Experiment("with_data", ingredients=[data])


@ex.automain
def main():
    print("got", load())
