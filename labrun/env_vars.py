"""Environment variables that `labrun rerun` sets for the run it starts (docs/reproducibility.md)."""

RERUN_OF_ENV = "LABRUN_RERUN_OF"  # JSON {"store": ..., "run_id": ..., "uid": ...} of the original run
RUN_UID_ENV = "LABRUN_RUN_UID"  # the uid the next run takes, so `rerun --check` can find it in the store
