"""``labrun ls``, ``show``, ``compare`` and ``plot``: recorded runs in the terminal (docs/browse.md).

They read stores through ``labrun.readback`` and never import the run machinery.
"""
