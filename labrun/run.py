"""A run: one execution of a command with a fixed config, and its life from start to end."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable, Sequence

from labrun.captured import Capture
from labrun.config.resolve import ResolvedConfig
from labrun.options import Options
from labrun.seeding import seed_globals

RUNNING, COMPLETED, FAILED, INTERRUPTED, TIMEOUT, QUEUED = (
    "RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "TIMEOUT", "QUEUED")


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


class Run:
    """Sacred's ``Run``: ``config``, ``info``, ``result``, ``status``, times, and the hooks around main."""

    def __init__(
        self,
        *,
        experiment_info: dict[str, Any],
        command: str,
        main_function: Callable[[], Any],
        resolved: ResolvedConfig,
        config: dict[str, Any],
        options: Options,
        meta_info: dict[str, Any],
        info: dict[str, Any] | None,
        observers: Sequence[Any],
        captures: Sequence[Capture],
        pre_run_hooks: Sequence[Callable[[], Any]] = (),
        post_run_hooks: Sequence[Callable[[], Any]] = (),
    ):
        self._id: Any = options.id
        self.experiment_info = experiment_info
        self.command = command
        self.main_function = main_function
        self.config = config
        self.config_modifications = resolved
        self.options = options
        self.meta_info = meta_info
        self.info: dict[str, Any] = dict(info or {})
        self.observers = list(observers)
        self.captures = list(captures)
        self.pre_run_hooks = list(pre_run_hooks)
        self.post_run_hooks = list(post_run_hooks)
        self.status: str | None = None
        self.result: Any = None
        self.start_time: _dt.datetime | None = None
        self.stop_time: _dt.datetime | None = None
        self.fail_trace: list[str] | None = None

    @property
    def seed(self) -> int:
        return self.config["seed"]

    def __call__(self) -> Any:
        """Run the command once: seed, bind captured functions, run hooks and main, record the ending."""
        if self.status is not None:
            raise RuntimeError("this run has already been started; call ex.run() again for a new run")
        seed_globals(self.seed)
        for state in self.captures:
            state.bind(self, self.config, self.seed)
        self.start_time = utcnow()
        self.status = RUNNING
        try:
            for hook in self.pre_run_hooks:
                hook()
            self.result = self.main_function()
            for hook in self.post_run_hooks:
                hook()
            self.status = COMPLETED
        except BaseException as exc:
            from labrun.tracebacks import format_user_traceback

            self.status = FAILED
            self.fail_trace = format_user_traceback(exc).splitlines(keepends=True)
            raise
        finally:
            self.stop_time = utcnow()
            for state in self.captures:
                state.unbind()
        return self.result
