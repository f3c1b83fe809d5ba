"""Environment variables that `labrun rerun` and sweeps set for the runs they start (docs/reproducibility.md,
docs/sweeps.md)."""

RERUN_OF_ENV = "LABRUN_RERUN_OF"  # JSON {"store": ..., "run_id": ..., "uid": ...} of the original run
RUN_UID_ENV = "LABRUN_RUN_UID"  # the uid the next run takes, so `rerun --check` can find it in the store
SWEEP_ENV = "LABRUN_SWEEP"  # JSON of the run's `meta.sweep`, set by a sweep for each run it starts
