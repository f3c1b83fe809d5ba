"""A run started from a Jupyter notebook: its code is the notebook, not a script file.

The cells run so far (IPython's ``In``, in the order they ran) are stored as one source file,
``notebook_cells.py``: that is the code that ran, saved or not. When the kernel knows the notebook's
path, the .ipynb is stored too.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from labrun.provenance.sources import md5_of

CELLS_NAME = "notebook_cells.py"


def kernel_shell() -> Any:
    """The IPython shell of a Jupyter kernel this process is, or None (scripts, plain IPython, tests)."""
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return None
    shell = sys.modules["IPython"].get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def notebook_path(shell: Any) -> str | None:
    """The .ipynb this kernel runs, when the front end says (Jupyter Server, VS Code)."""
    candidates = [shell.user_ns.get("__vsc_ipynb_file__"), shell.user_ns.get("__session__"),
                  os.environ.get("JPY_SESSION_NAME")]
    for path in candidates:
        if isinstance(path, str) and path.endswith(".ipynb") and os.path.isfile(path):
            return os.path.abspath(path)
    return None


def notebook_sources(base_dir: str) -> list[dict[str, str]]:
    """Source entries (``path``, ``abspath``, ``md5``) for the notebook's cells and its .ipynb; empty
    outside a Jupyter kernel."""
    shell = kernel_shell()
    if shell is None:
        return []
    cells = [cell for cell in shell.user_ns.get("In", []) if cell and cell.strip()]
    text = "".join(f"# In[{n}]:\n{cell.rstrip()}\n\n" for n, cell in enumerate(cells, start=1))
    folder = os.path.join(tempfile.gettempdir(), f"labrun-notebook-{os.getpid()}")
    os.makedirs(folder, exist_ok=True)
    cells_file = os.path.join(folder, CELLS_NAME)  # one per kernel: each run's journal copies it at its start
    with open(cells_file, "w", encoding="utf-8") as f:
        f.write(text)
    entries = [{"path": CELLS_NAME, "abspath": cells_file, "md5": md5_of(cells_file)}]
    path = notebook_path(shell)
    if path is not None:
        rel = os.path.relpath(path, base_dir)
        entries.append({"path": rel if not rel.startswith("..") else os.path.basename(path), "abspath": path,
                        "md5": md5_of(path)})
    return entries
