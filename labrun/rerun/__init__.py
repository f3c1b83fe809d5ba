"""``labrun rerun``: re-create a recorded run from its stored code, config and seed (docs/reproducibility.md).

Like the rest of the read-back path, this never imports the run machinery: the run is re-executed as a new
process of the experiment's own script.
"""
