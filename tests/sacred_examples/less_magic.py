"""Config as an explicit dict, read through _config, started with ex.run()."""
from sacred import Experiment
from sacred.observers import FileStorageObserver

ex = Experiment("explicit")
ex.observers.append(FileStorageObserver("explicit_runs"))
ex.add_config({"width": 3, "height": 4, "seed": 42})


def area(width, height):
    return width * height


@ex.main
def run(_config):
    return area(_config["width"], _config["height"])


if __name__ == "__main__":
    ex.run()
