"""What a run records to be re-created: sources, git state, environment and host (docs/reproducibility.md).

Nothing here runs at import time; ``gather.gather_provenance`` gathers everything once per observed run,
in parallel.
"""
