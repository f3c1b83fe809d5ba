"""A progress bar drawn with backspaces and carriage returns, cleaned in the stored output."""
import sys

from sacred import Experiment
from sacred.utils import apply_backspaces_and_linefeeds

ex = Experiment("progress_bar")
ex.captured_out_filter = apply_backspaces_and_linefeeds


@ex.main
def main():
    for done in range(1, 6):
        sys.stdout.write("\b" * 20 + "\r" + "done {}/5".format(done))
        sys.stdout.flush()
    sys.stdout.write("\n")


if __name__ == "__main__":
    run = ex.run_commandline()
    print("stored:", repr(run.captured_out))
