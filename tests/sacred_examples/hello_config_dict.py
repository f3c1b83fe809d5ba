"""Config given as a dict."""
from sacred import Experiment

ex = Experiment("hello_dict")
ex.add_config({"greeting": "Hi", "who": "everyone"})


@ex.automain
def main(greeting, who):
    print(f"{greeting}, {who}!")
