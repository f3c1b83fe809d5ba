"""Nested ingredients whose config scopes read other ingredients' config."""
from sacred import Experiment, Ingredient

settings = Ingredient("settings")


@settings.config
def settings_cfg():
    verbose = True


paths = Ingredient("dataset.paths", ingredients=[settings])


@paths.config
def paths_cfg(settings):
    quiet = not settings["verbose"]
    root = "/data/"


dataset = Ingredient("dataset", ingredients=[paths, settings])


@dataset.config
def dataset_cfg(paths):
    folder = paths["root"] + "sets/"
    name = "digits.npz"


@dataset.capture
def where(folder, name, paths, settings):
    print(paths)
    print(settings)
    return folder + name


ex = Experiment("modular", ingredients=[dataset, paths])


@ex.config
def cfg(dataset):
    a = 1
    b = 2
    total = a + b
    out = dataset["paths"]["root"] + "out/"
    out_name = dataset["name"].replace(".npz", ".log")


@ex.automain
def main(a, b, total, out, out_name, dataset):
    print("a =", a, "b =", b, "total =", total)
    print("out =", out, out_name)
    print("where() =", where())
