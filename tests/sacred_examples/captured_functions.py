"""Captured functions take their arguments from the config."""
from sacred import Experiment

ex = Experiment("captured")


@ex.config
def cfg():
    greeting = "Good day"
    name = "Ada"


@ex.capture
def salute(greeting, name, punctuation="."):
    print(greeting + ", " + name + punctuation)


@ex.automain
def main():
    salute()
    salute(name="Grace")
    salute(greeting="Evening", punctuation="!")
