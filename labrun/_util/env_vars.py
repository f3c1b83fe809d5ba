"""Every environment variable labrun reads, in one place (docs/cli.md lists them for users)."""

# Set by users
JOURNAL_DIR_ENV = "LABRUN_JOURNAL_DIR"  # where journals live (else $XDG_STATE_HOME/labrun/journal)
JOURNAL_MEMORY_ENV = "LABRUN_JOURNAL_MEMORY_MB"  # events kept in memory while the journal's disk is full
DELIVERY_TIMEOUT_ENV = "LABRUN_DELIVERY_TIMEOUT"  # seconds a run's end waits for its observers
BACKGROUND_DELIVERY_ENV = "LABRUN_BACKGROUND_DELIVERY"  # 0 turns off delivery after the script exits
RECORD_ENV_ALLOW = "LABRUN_RECORD_ENV"  # comma-separated names or globs of environment variables to record
SYSTEM_METRICS_ENV = "LABRUN_SYSTEM_METRICS"  # 0 records no system/* metrics (as --no-system-metrics)
OBSERVERS_ENV = "LABRUN_OBSERVERS"  # observer URLs used when the command line and the script add none
SECRET_FILES_ENV = "LABRUN_SECRET_FILES"  # comma-separated globs of more file names never copied into a store

# Set by labrun for the processes it starts
RERUN_OF_ENV = "LABRUN_RERUN_OF"  # JSON {"store": ..., "run_id": ..., "uid": ...} of the run `labrun rerun` re-creates
RUN_UID_ENV = "LABRUN_RUN_UID"  # the uid the next run takes (`rerun --check`, sweeps find the run by it)
SWEEP_ENV = "LABRUN_SWEEP"  # JSON of the run's `meta.sweep`, set by a sweep for each run it starts
LAUNCHER_ENV = "LABRUN_LAUNCHER"  # JSON of the run's `meta.launcher` (engine, job and node), set on a cluster's worker
CODE_SNAPSHOT_ENV = "LABRUN_CODE_SNAPSHOT"  # the code snapshot's description file a launched run's code comes from
SYNC_URLS_ENV = "LABRUN_SYNC_URLS"  # observer URLs with credentials for a background sync, kept out of `ps`
