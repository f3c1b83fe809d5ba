"""What a run records to be re-created: sources, git state, environment and host (docs/reproducibility.md).

Nothing here runs at import time; ``capture.capture_provenance`` gathers everything once per observed run,
in parallel.
"""
