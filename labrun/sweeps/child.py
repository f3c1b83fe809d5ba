"""``python -m labrun.sweeps.child FILE NAME [COMMAND] [options] with ...``: one run of ``ex.sweep(jobs>1)``.

It imports FILE as a module (not as ``__main__``, so code the file runs only as a script does not run
again), takes the experiment bound to NAME and runs its command line with the rest of the arguments.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def main(argv: list[str]) -> None:
    path, name, *rest = argv
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("__labrun_sweep_main__", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    getattr(module, name).run_commandline([path, *rest])


if __name__ == "__main__":
    main(sys.argv[1:])
