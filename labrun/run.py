"""A run: one execution of a command with a fixed config, its user API and its status from start to end.

Everything a run produces is stored through its ``Recording`` (labrun/recording/session.py) as journal events; observers
are fed from the journal by background threads, so nothing in the training loop waits on disk, network or an
observer (docs/journal.md).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import signal
import sys
import threading
import time
from array import array
from typing import Any, Callable, Sequence

from labrun.stores.artifact_names import check_artifact_name, numbered
from labrun.config.resolve import ResolvedConfig, ingredient_fixture
from labrun.config.values import storable
from labrun._util.env_vars import RUN_UID_ENV
from labrun.cli.options import Options
from labrun.provenance.host import host_basics
from labrun.provenance.system_metrics import PREFIX as SYSTEM_PREFIX
from labrun.stores.record import ExperimentInfo, RunRecord
from labrun.errors import SacredInterrupt, TimeoutInterrupt
from labrun.randomness import FunctionSeeds, set_global_seed
from labrun._util.timestamps import iso, utcnow

RUNNING, COMPLETED, FAILED, INTERRUPTED, TIMEOUT, QUEUED = (
    "RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "TIMEOUT", "QUEUED")
logger = logging.getLogger("labrun")
_now = time.time
__all__ = ["Run", "TimeoutInterrupt", "RunTerminated", "MetricBuffer"]


class RunTerminated(KeyboardInterrupt):
    """SIGTERM arrived (or SIGUSR1/SIGUSR2, which clusters send before a time limit): the run is recorded as
    INTERRUPTED and the process exits with 128 + the signal's number (143 for SIGTERM)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class MetricBuffer:
    """One metric's points not yet taken by the recorder (step, value, time, step, value, time, ...), and
    its last step. An object with slots: cheaper in ``log_scalar`` than two dicts keyed by name."""

    __slots__ = ("points", "last_step")

    def __init__(self) -> None:
        self.points = array("d")
        self.last_step = -1


class Run:
    """Sacred's ``Run``: ``config``, ``info``, ``result``, ``status``, metrics, artifacts and resources."""

    def __init__(
        self,
        *,
        experiment_info: ExperimentInfo,
        command: str,
        main_function: Callable[[], Any],
        resolved: ResolvedConfig,
        config: dict[str, Any],
        options: Options,
        meta_info: dict[str, Any],
        info: dict[str, Any] | None,
        observers: Sequence[Any],
        provenance: Callable[[], dict[str, Any]] | None = None,
        root: Any,
        ingredients: Sequence[Any],
        root_logger: logging.Logger | None = None,
        run_logger: logging.Logger | None = None,
        captured_out_filter: Callable[[str], str] | None = None,
        pre_run_hooks: Sequence[Callable[[], Any]] = (),
        post_run_hooks: Sequence[Callable[[], Any]] = (),
        observed: bool = True,
        warn_unobserved: bool = True,
    ):
        self._id: Any = int(options.id) if options.id is not None and str(options.id).isdigit() else options.id
        # 128 random bits: unique across stores and machines (`labrun rerun` names it, once, to find the run)
        self.uid = os.environ.pop(RUN_UID_ENV, "") or os.urandom(16).hex()
        self.experiment_info = experiment_info
        self.command = command
        self.main_function = main_function
        self.config = config
        self.config_modifications = resolved
        self.options = options
        self.meta_info = meta_info
        self.info: dict[str, Any] = dict(info or {})
        self.observers = list(observers)
        self.provenance = provenance
        self.host: dict[str, Any] = {}
        self.environment: dict[str, Any] = {}
        self._sources: list[dict[str, str]] = []  # found at the start: {"path", "abspath", "md5"}
        self.observed = observed
        self.warn_unobserved = warn_unobserved  # False for an ingredient's command (a utility, data.describe)
        self._root = root
        self.ingredients = list(ingredients)
        self.root_logger = root_logger or logging.getLogger()
        self.run_logger = run_logger or logging.getLogger(experiment_info["name"])
        self.captured_out_filter = captured_out_filter
        self.captured_out = ""  # what the run printed, as stored (filtered), once an observer captured it
        self.pre_run_hooks = list(pre_run_hooks)
        self.post_run_hooks = list(post_run_hooks)
        self.status: str | None = None
        self.result: Any = None
        self.start_time: _dt.datetime | None = None
        self.stop_time: _dt.datetime | None = None
        self.fail_trace: list[str] | None = None
        self.artifacts: list[str] = []
        self.resources: list[list[str]] = []
        self._metrics: dict[str, MetricBuffer] = {}
        self._recording: Any = None  # a labrun.recording.session.Recording while an observed run goes on
        self._undo_sharing: list[Callable[[], None]] = []  # stores that shared the run with the user's code
        self.stores_behind: list[str] = []  # observers that had not confirmed the whole run when it returned

    @property
    def seed(self) -> int:
        return self.config["seed"]

    # -- Sacred's Run attributes, derived from the options -------------------------------------------------
    @property
    def beat_interval(self) -> float:
        if self.options.beat_interval is not None:
            return self.options.beat_interval
        from labrun.settings import SETTINGS

        return float(SETTINGS.DEFAULT_BEAT_INTERVAL)

    @property
    def records_system_metrics(self) -> bool:
        """Whether the run records system/* metrics: not with --no-system-metrics or LABRUN_SYSTEM_METRICS=0."""
        from labrun._util.env_vars import SYSTEM_METRICS_ENV

        return not self.options.no_system_metrics and os.environ.get(SYSTEM_METRICS_ENV, "1") != "0"

    @property
    def host_info(self) -> dict[str, Any]:
        return self.host

    @property
    def debug(self) -> bool:
        return self.options.debug

    @property
    def pdb(self) -> bool:
        return self.options.pdb

    @property
    def unobserved(self) -> bool:
        return not self.observed

    @property
    def capture_mode(self) -> str | None:
        """-C, else SETTINGS.CAPTURE_MODE when changed from Sacred's default "fd"; None: labrun's choice
        (fd where print writes to file descriptor 1, else sys)."""
        if self.options.capture is not None:
            return self.options.capture
        from labrun.settings import SETTINGS

        return None if SETTINGS.CAPTURE_MODE == "fd" else SETTINGS.CAPTURE_MODE

    @property
    def force(self) -> bool:
        return self.options.force

    @property
    def queue_only(self) -> bool:
        return self.options.queue

    @property
    def captured_functions(self) -> list[Any]:
        return [state for ingredient in self.ingredients for state in ingredient.captured_functions]

    # -- inside the run ------------------------------------------------------------------------------------
    def log_scalar(self, name: str, value: Any, step: int | None = None) -> None:
        """Record a point; only appends to memory (the recorder thread writes it out)."""
        try:
            metric = self._metrics[name]
        except KeyError:
            if name.startswith(SYSTEM_PREFIX):
                raise ValueError(f"metric names starting with '{SYSTEM_PREFIX}' are reserved for the system "
                                 f"metrics labrun records (CPU, memory, GPU); rename '{name}', e.g. to "
                                 f"'{name[len(SYSTEM_PREFIX):]}'") from None
            metric = self._metrics[name] = MetricBuffer()
        if step is None:
            step = metric.last_step + 1
        metric.last_step = step
        # One C call, atomic under the GIL, 24 bytes a point; float() takes numpy and torch scalars.
        metric.points.extend((step, value if value.__class__ is float else float(value), _now()))

    def _keep_last_point(self, name: str, value: Any, step: int | None = None) -> None:
        """``log_scalar`` of a run that no observer records: only each metric's last point is kept (3 numbers),
        so memory stays flat however long the run logs."""
        try:
            metric = self._metrics[name]
        except KeyError:
            self.__class__.log_scalar(self, name, value, step)  # the same checks for a new name
            return
        if step is None:
            step = metric.last_step + 1
        metric.last_step = step
        points = metric.points
        points[0], points[1], points[2] = step, value if value.__class__ is float else float(value), _now()

    def add_artifact(self, filename: str, name: str | None = None, metadata: Any = None,
                     content_type: str | None = None) -> str:
        """Store a file with the run; it is copied at once, so changing or deleting it later is safe.

        A second artifact with the same name is stored as ``name-2.ext`` (and so on), never over the first.
        Returns the name it is stored under.
        """
        name = check_artifact_name(name if name is not None else os.path.basename(filename))
        if not os.path.isfile(filename):
            raise FileNotFoundError(f"artifact file '{filename}' does not exist")
        stored_name, n = name, 1
        while stored_name in self.artifacts:
            n += 1
            stored_name = numbered(name, n)
        if stored_name != name:
            logger.warning("an artifact named '%s' exists already; storing this one as '%s'", name, stored_name)
        self.artifacts.append(stored_name)
        if self._recording is not None:
            self._recording.artifact(filename, stored_name, storable(metadata), content_type)
        return stored_name

    def add_resource(self, filename: str) -> None:
        """Record a file the run reads (stored once per content)."""
        from labrun.provenance.sources import md5_of

        path = os.path.abspath(filename)
        md5 = md5_of(path)
        if [path, md5] in self.resources:
            return
        self.resources.append([path, md5])
        if self._recording is not None:
            self._recording.resource(path, md5)

    def open_resource(self, filename: str, mode: str = "r") -> Any:
        """``open()`` that also records the file as a resource."""
        self.add_resource(filename)
        return open(filename, mode)

    # -- life cycle ----------------------------------------------------------------------------------------
    def __call__(self) -> Any:
        """Run the command once and record it, whatever its ending; log its life as Sacred does."""
        if self.status is not None:
            raise RuntimeError("this run has already been started; call ex.run() again for a new run")
        if self.observed and not self.observers and self.warn_unobserved:
            self.run_logger.warning("No observers have been added to this run")  # Sacred's line, then how
            _tell_how_to_observe()
        self._gather_provenance()  # before the run starts: -e refuses a dirty tree here
        if self.options.queue:
            return self._queue()
        if not self.observers:  # nothing will take the points: keep the last of each, not all of them
            self.log_scalar = self._keep_last_point  # type: ignore[method-assign]
        set_global_seed(self.seed)
        seeds = FunctionSeeds(self._root, self.ingredients, self.seed)
        for ingredient in self.ingredients:
            parent = self.root_logger.getChild(ingredient.path) if ingredient.path else self.root_logger
            fixture = ingredient_fixture(ingredient, self.config)
            for state in ingredient.captured_functions:
                state.bind(self, fixture, ingredient.config_path, seeds, parent)
        self.start_time = utcnow()
        self.status = RUNNING
        restore_signal = _handle_sigterm()
        try:
            if self.observers:  # capturing starts here, so the log lines below are in the stored output
                from labrun.recording.session import Recording

                # Stores whose own API the script imported (MLflow) share their run with it. Decided before
                # the delivery threads start, since they import the same packages.
                sharing = [o for o in self.observers if getattr(o, "user_api", None) in sys.modules]
                recording = Recording(self)
                self._id = recording.start()
                self._recording = recording
                for observer in sharing:
                    undo = observer.share_with_user_code()
                    if undo is not None:
                        self._undo_sharing.append(undo)
            self.run_logger.info("Running command '%s'", self.command)
            if self._id is None or not self.observers:
                self.run_logger.info("Started")
            else:
                self.run_logger.info('Started run with ID "%s"', self._id)
                where = recording.location()
                if where:
                    self.run_logger.info("Stored in %s", where)
            for hook in self.pre_run_hooks:
                hook()
            self.result = self.main_function()
            for hook in self.post_run_hooks:
                hook()
            if self.result is not None:
                self.run_logger.info("Result: %s", self.result)
            self.status = COMPLETED
            self.run_logger.info("Completed after %s", self._stop())
        except SystemExit as exc:  # sys.exit(0) ends a run well (Sacred records it FAILED)
            self.status = COMPLETED if exc.code in (0, None) else FAILED
            if self.status == COMPLETED:
                self.run_logger.info("Completed after %s", self._stop())
            else:
                self.run_logger.error("Failed after %s!", self._stop())
            raise
        except (SacredInterrupt, KeyboardInterrupt) as exc:
            self.status = getattr(exc, "STATUS", INTERRUPTED)
            self.run_logger.warning("Aborted after %s!", self._stop())
            raise
        except BaseException as exc:
            from labrun._util.tracebacks import format_user_traceback

            self.status = FAILED
            self.fail_trace = format_user_traceback(exc).splitlines(keepends=True)
            self.run_logger.error("Failed after %s!", self._stop())
            raise
        finally:
            self._stop()
            restore_signal()
            for undo in self._undo_sharing:
                undo()
            for state in self.captured_functions:
                state.unbind()
            if self._recording is not None:
                self._recording.finish()
        return self.result

    def _stop(self) -> str:
        """Fix the stop time (once) and return the run's duration as Sacred prints it, H:MM:SS."""
        if self.stop_time is None:
            self.stop_time = utcnow()
        if self.start_time is None:
            return "0:00:00"
        return str(_dt.timedelta(seconds=round((self.stop_time - self.start_time).total_seconds())))

    def _gather_provenance(self) -> None:
        """Sources, git state, environment and host, for observed runs and for ``-e`` (which needs git)."""
        if self.provenance is None or not (self.observers or self.options.enforce_clean):
            return
        found = self.provenance()
        self._sources = found["sources"]
        self.experiment_info = {**self.experiment_info, "dependencies": found["dependencies"],
                                "repositories": found["repositories"]}
        self.host = found["host"]
        self.environment = found["environment"]

    @property
    def source_entries(self) -> list[dict[str, str]]:
        """The source files found at the start: ``{"path", "abspath", "md5"}``."""
        return self._sources

    def late_source_entries(self) -> list[dict[str, str]]:
        """Local modules first imported while the run went on (Sacred never sees these)."""
        from labrun.provenance.sources import local_modules, source_entries

        base_dir = self.experiment_info["base_dir"]
        known = {entry["abspath"] for entry in self._sources}
        new = [path for path in local_modules(base_dir) if path not in known]
        entries = source_entries(new, base_dir)
        self._sources += entries
        return entries

    @property
    def metric_buffers(self) -> dict[str, MetricBuffer]:
        """The metrics logged and not yet taken by the recorder, by name."""
        return self._metrics

    def start_record(self) -> RunRecord:
        """The run record every store starts from (Sacred's run.json fields, plus ``uid``)."""
        started = iso(self.start_time or utcnow())
        return {
            "uid": self.uid,
            "experiment": self.experiment_info,
            "command": self.command,
            "host": self.host or host_basics(),  # unobserved runs skip the full capture
            "meta": storable(self.meta_info),
            "config": self.config,
            "status": self.status or RUNNING,  # None only before the run starts
            "start_time": started,
            "heartbeat": started,
            "result": None,
            "artifacts": [],
            "resources": [],
            "info": storable(self.info),
            "environment": self.environment,
        }

    def _queue(self) -> None:
        """-q: record the run as QUEUED without running it."""
        from labrun.recording.session import Recording

        self.status = QUEUED
        self.run_logger.info("Queuing-up command '%s'", self.command)  # Sacred's line: nothing runs now
        if self.observers:
            self._id = Recording(self).queue()
            self.run_logger.info('Queued-up run with ID "%s"', self._id)
        return None


def _handle_sigterm() -> Callable[[], None]:
    """While the run lasts, SIGTERM raises RunTerminated in the main thread so the run is recorded; so do
    SIGUSR1 and SIGUSR2 while nothing else handles them (Slurm and submitit send them before a time limit or
    a preemption, and their default action kills the process unrecorded). Not in a Jupyter kernel: its
    process belongs to the kernel manager, which stops it as it sees fit."""
    from labrun.provenance.notebook import kernel_shell

    if threading.current_thread() is not threading.main_thread() or kernel_shell() is not None:
        return lambda: None

    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        if not received:  # once: a repeated SIGTERM (a dying worker sends several) must not cut the recording short
            received.append(signum)
            raise RunTerminated(signum)

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_signal)}
    for signum in (signal.SIGUSR1, signal.SIGUSR2):
        if signal.getsignal(signum) == signal.SIG_DFL:
            previous[signum] = signal.signal(signum, on_signal)

    def restore() -> None:
        for signum, handler in previous.items():
            # terminated: the process is ending once the record is complete, so later copies are ignored
            signal.signal(signum, signal.SIG_IGN if received else handler)

    return restore


_told_how_to_observe = False


def _tell_how_to_observe() -> None:
    global _told_how_to_observe
    if not _told_how_to_observe:
        _told_how_to_observe = True
        logger.info("add an observer with -F DIR (file store), -m URL (MongoDB), --mlflow URI, --tensorboard "
                    "LOGDIR or -o URL; or set project defaults with $LABRUN_OBSERVERS or observers = [...] in "
                    "pyproject.toml's [tool.labrun]; or pass -u to run unobserved on purpose")
