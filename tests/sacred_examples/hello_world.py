"""The smallest experiment: a main function and nothing else."""
from sacred import Experiment

ex = Experiment("hello")


@ex.automain
def greet():
    print("Hello there!")
