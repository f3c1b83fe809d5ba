"""_seed and _rnd derive from the master seed."""
from sacred import Experiment

ex = Experiment("random_demo")


@ex.config
def cfg():
    count = 2
    swap = False


@ex.capture
def draw(count, _rnd):
    print([int(_rnd.integers(1, 1000)) if hasattr(_rnd, "integers") else _rnd.randint(1, 1000)
           for _ in range(count)])


@ex.capture
def show_seed(_seed):
    print(_seed)


@ex.automain
def main(swap):
    if swap:
        show_seed()
        draw()
    else:
        draw()
        show_seed()
    draw()
