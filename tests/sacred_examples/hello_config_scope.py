"""Config given as a config scope: derived entries follow the ones they use."""
from sacred import Experiment

ex = Experiment("hello_scope")


@ex.config
def settings():
    # who is greeted
    who = "world"
    # what is said
    text = "Hello {}!".format(who)


@ex.automain
def main(text):
    print(text)
