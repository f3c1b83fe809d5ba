"""A named config that replaces entries of the normal config."""
from sacred import Experiment

ex = Experiment("named")


@ex.named_config
def formal():
    recipient = "Sir"
    message = "Good evening, {}.".format(recipient)


@ex.config
def cfg():
    recipient = "pal"
    message = "Hey {}!".format(recipient)


@ex.automain
def main(message):
    print(message)
