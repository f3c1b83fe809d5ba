"""Commands beside the main function."""
from sacred import Experiment

ex = Experiment("commands")


@ex.config
def cfg():
    name = "Lin"


@ex.command
def welcome(name):
    """Welcome NAME politely."""
    print("Welcome, {}!".format(name))


@ex.command
def yell():
    """Yell something."""
    print("HEY!!!")


@ex.automain
def main():
    print("main ran; try the welcome or yell commands")
