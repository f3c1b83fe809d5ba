"""The Experiment: config, commands and runs, from Python or from the command line."""

from __future__ import annotations

import copy
import functools
import inspect
import json
import logging
import os
import signal
import sys
import types
from typing import Any, Callable, Sequence, Union, overload

from labrun.config.patch import Merge, Replace, format_path, to_nested
from labrun.config.resolve import resolve
from labrun.config.scope import ConfigDict, ConfigLayer, ConfigScope
from labrun.config.updates import updates_from_dict
from labrun._util.env_vars import LAUNCHER_ENV, RERUN_OF_ENV, SWEEP_ENV
from labrun.errors import CommandLineError, ConfigError, LabrunError, SignatureError
from labrun.ingredient import F, Command, Ingredient
from labrun.cli.options import Options
from labrun.run import Run
from labrun.stores.record import ExperimentInfo
from labrun._util.suggest import did_you_mean

LOG_FORMAT = "%(levelname)s - %(name)s - %(message)s"


class Experiment(Ingredient):
    """Sacred's ``Experiment``: the root ingredient, with a main function, observers and runs."""

    def __init__(self, name: str | None = None, ingredients: Sequence[Ingredient] = (), *,
                 interactive: bool = False, base_dir: str | None = None, save_git_info: bool = True,
                 additional_host_info: Sequence[Any] | None = None,
                 additional_cli_options: Sequence[Any] | None = None, _caller_depth: int = 1):
        """Sacred's arguments. ``interactive`` is accepted: labrun runs in notebooks and REPLs without it.
        ``additional_host_info``: ``@host_info_gatherer`` functions; ``additional_cli_options``:
        ``@cli_option`` flags of the script's own."""
        super().__init__("", ingredients, interactive=interactive, base_dir=base_dir, save_git_info=save_git_info,
                         _caller_depth=_caller_depth + 1)
        self.record_env: list[str] = []  # names or globs of environment variables to record with each run
        self.name = name or _default_name(self.mainfile)
        self.observers: list[Any] = []
        self.default_command: str | None = None
        self.current_run: Run | None = None
        # Sacred's: a logger set here receives every message of the runs (its children: the experiment's
        # name, each ingredient's path, each captured function's name), and the root logger is left alone.
        self.logger: logging.Logger | None = None
        self.captured_out_filter: Callable[[str], str] | None = None  # applied to the output before storing
        self.additional_host_info = list(additional_host_info or [])
        if self.additional_host_info:
            from labrun.host_info import check_additional_host_info

            check_additional_host_info(self.additional_host_info)
        self.additional_cli_options = list(additional_cli_options or [])
        self.option_hooks: list[Callable[..., Any]] = []

    def run_logger(self) -> logging.Logger:
        """The logger of the runs' messages: the experiment's name under ``ex.logger`` or the root logger."""
        return (self.logger or logging.getLogger()).getChild(self.name)

    def option_hook(self, function: F) -> F:
        """Decorator (Sacred's): ``function(options)`` is called before each run is created with the options
        as Sacred names them (``options["--loglevel"]``), and may change the flags."""
        if "options" not in inspect.signature(function).parameters:
            raise SignatureError(f"option hook {function.__name__}() must take an argument named 'options'")
        self.option_hooks.append(function)
        return function

    # -- decorators ------------------------------------------------------------------------------------------
    def main(self, function: F) -> F:
        """Decorator: the function run by default (``python exp.py`` or ``ex.run()``); it is captured."""
        captured = self.command(function)
        self.default_command = function.__name__
        return captured

    def automain(self, function: F) -> F:
        """Like ``main``, and run the command line at once when the file runs as a script (last statement)."""
        captured = self.main(function)
        if function.__module__ == "__main__":
            self.run_commandline()
        return captured

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, command_name: str | None = None, config_updates: dict[str, Any] | None = None,
            named_configs: Sequence[str] = (), info: dict[str, Any] | None = None,
            meta_info: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> Run:
        """Run a command (the main function by default) and return the finished Run."""
        own = {o.long_flag.replace("_", "-"): o for o in self.additional_cli_options}
        given = {str(k).replace("_", "-"): v for k, v in (options or {}).items()}
        extra = {flag: value for flag, value in given.items() if flag in own}
        run = self._create_run(command_name, updates_from_dict(config_updates), list(named_configs), info,
                               meta_info, Options.from_mapping({k: v for k, v in given.items() if k not in own}),
                               extra_options=extra)
        self._execute(run)
        return run

    def run_commandline(self, argv: Sequence[str] | None = None) -> Run | None:
        """Parse ``argv`` (``sys.argv`` by default, program name first) and run what it asks for.

        Bad input prints one line (``-d`` adds the traceback) and exits with status 2; a failing run prints
        its traceback without labrun's frames and exits with status 1.
        """
        from labrun.cli.argv import parse_command_line, usage_line

        argv = list(sys.argv if argv is None else argv)
        prog = os.path.basename(argv[0]) if argv else "exp.py"
        debug = any(a in ("-d", "--debug") for a in argv[1:])
        try:
            cl = parse_command_line(argv[1:], prog, [o.spec for o in self.additional_cli_options])
            debug = cl.options.debug
            if cl.options.help:
                print(self.help_text(prog))
                return None
            if cl.command == "help":
                print(self.command_help(cl.args, prog))
                return None
            cl.options.check_sweep()
            if cl.options.multirun:
                from labrun.sweeps.runner import sweep_command_line

                configure_logging(cl.options.loglevel, self.logger)
                sys.exit(sweep_command_line(self, cl, argv))
            run = self._create_run(cl.command, cl.updates.fixed, cl.updates.named_configs, None, None,
                                   cl.options, cl.args, cl.update_tokens, cl.extra_options)
        except LabrunError as exc:
            if debug:
                import traceback

                traceback.print_exc()
            print(f"error: {exc}", file=sys.stderr)
            if isinstance(exc, CommandLineError):
                print(f"usage:\n{usage_line(prog)}\nRun '{prog} --help' for the commands and options.",
                      file=sys.stderr)
            sys.exit(2)
        except Exception as exc:  # the user's config scope, config hook or option hook failed: no run yet
            from labrun._util.tracebacks import format_user_traceback

            print(format_user_traceback(exc, full=debug), file=sys.stderr, end="")
            print("error: the config could not be resolved, so no run started (the traceback above shows "
                  "where)", file=sys.stderr)
            sys.exit(1)
        try:
            self._execute(run)
        except KeyboardInterrupt as exc:
            from labrun.run import RunTerminated

            signum = exc.signum if isinstance(exc, RunTerminated) else signal.SIGINT
            if not run.observers:
                where = "no observer recorded it"
            elif run.stores_behind:  # said above: which stores are behind, and what delivers the rest
                where = f"not every store has that yet ({', '.join(run.stores_behind)})"
            else:
                where = "every store recorded it"
            print(f"Interrupted ({signal.Signals(signum).name}); the run ended as INTERRUPTED and {where}",
                  file=sys.stderr)
            sys.exit(128 + signum)
        except Exception as exc:
            from labrun._util.tracebacks import format_user_traceback

            if isinstance(exc, LabrunError) and run.status is None:  # refused before it started (-e)
                print(f"error: {exc}", file=sys.stderr)
                sys.exit(2)

            print(format_user_traceback(exc, full=run.options.debug), file=sys.stderr, end="")
            if run.options.pdb:
                import pdb

                pdb.post_mortem(exc.__traceback__)
            sys.exit(1)
        return run

    def sweep(self, grid: dict[str, Any] | str, *, jobs: int = 1, command_name: str | None = None,
              config_updates: dict[str, Any] | None = None, named_configs: Sequence[str] = (),
              options: dict[str, Any] | None = None, rerun_all: bool = False, fail_fast: bool = False,
              launcher: str = "local") -> list[Any]:
        """Run a grid of configs: ``{"lr": [0.1, 0.01], "with": ["small", "large"]}`` (lists are swept, other
        values fixed) or a sweep file; the same rules as ``python exp.py -M`` (docs/sweeps.md).

        Returns one ``SweepRun`` per run (status, id, result, last metric values). Runs already COMPLETED in
        the store are not run again (``rerun_all`` forces them). ``jobs=1`` runs in this process; more start
        processes that import the experiment from its file.
        """
        from labrun.sweeps.runner import sweep_from_python

        return sweep_from_python(self, grid, jobs=jobs, command_name=command_name, config_updates=config_updates,
                                 named_configs=named_configs, options=options, rerun_all=rerun_all,
                                 fail_fast=fail_fast, launcher=launcher)

    def _execute(self, run: Run) -> None:
        self.current_run = run
        try:
            if run.options.print_config and run.command != "print_config":
                from labrun.cli.commands import format_config, use_color

                print(format_config(run.config_modifications, use_color(sys.stdout)))
            run()
        finally:
            self.current_run = None

    def _create_run(self, command_name: str | None, updates: Merge, named_configs: list[str],
                    info: dict[str, Any] | None, meta_info: dict[str, Any] | None, options: Options,
                    args: Sequence[str] = (), update_tokens: Sequence[str] | None = None,
                    extra_options: dict[str, Any] | None = None) -> Run:
        from labrun.config.view import freeze
        from labrun.settings import SETTINGS
        from labrun.observer import adapt
        from labrun.recording.registry import create_observer, observer_urls

        if self.option_hooks:
            options = self._apply_option_hooks(options, command_name, update_tokens)
        command = self._find_command(command_name)
        if command.name == "save_config" and isinstance(updates, Merge) and not args and isinstance(
                updates.get("config_filename"), Replace):  # Sacred's form: save_config with config_filename=...
            updates = Merge(updates)
            args = (str(updates.pop("config_filename").value),)
        if args and not command.builtin:
            raise CommandLineError(
                f"command '{command.name}' takes no arguments on the command line (got {' '.join(args)}); "
                f"set its parameters as updates: with key=value")
        sources = self.traverse()
        root_logger = configure_logging(options.loglevel, self.logger)
        run_logger = root_logger.getChild(self.name)
        resolved = resolve(sources, updates, named_configs, command.name, options.force, run_logger)
        observers: list[Any] = []
        observed = not (options.unobserved or command.unobserved or command.builtin)
        if observed:
            observers = [adapt(o) for o in self.observers] + [
                create_observer(url) for url in observer_urls(options)]
            if not observers:  # the project's defaults: $LABRUN_OBSERVERS, else [tool.labrun] in pyproject.toml
                from labrun.recording.defaults import default_observer_urls

                observers = [create_observer(url) for url in default_observer_urls(self.base_dir)]
        own_options = {  # the script's own flags, as Sacred lists them: the value, else False or None
            o.long_flag: (extra_options or {}).get(o.long_flag.replace("_", "-"), False if o.is_flag else None)
            for o in self.additional_cli_options}
        meta = {
            "command": command.name,
            "options": {**options.as_record(command_name, update_tokens), **own_options},
            "named_configs": list(named_configs),
            "config_updates": to_nested(updates),
            "comment": options.comment,
            "priority": options.priority,
            "cwd": os.getcwd(),  # where relative paths in the config pointed (`labrun rerun` starts there)
            # for `labrun show`: each entry's doc comment, and the entries the updates and named configs changed
            "config_docs": {format_path(path): doc for path, doc in sorted(resolved.docs.items())},
            "config_changed": sorted(format_path(p) for p in resolved.modified | resolved.added),
            **(meta_info or {}),
        }
        if os.environ.get(RERUN_OF_ENV):  # set by `labrun rerun` for the run it starts
            meta["rerun_of"] = json.loads(os.environ[RERUN_OF_ENV])
        if os.environ.get(SWEEP_ENV) and not command.builtin:  # set by a sweep for each run it starts
            meta["sweep"] = json.loads(os.environ.pop(SWEEP_ENV))
            if os.environ.get(LAUNCHER_ENV):  # set by a cluster launcher's worker: engine, job, node
                meta["launcher"] = json.loads(os.environ.pop(LAUNCHER_ENV))
        run = Run(
            experiment_info=self.experiment_info(options.name),
            provenance=functools.partial(self.provenance, options.enforce_clean),
            command=command.name,
            main_function=command.function,
            resolved=resolved,
            config=freeze(resolved.config) if SETTINGS.CONFIG.READ_ONLY_CONFIG else copy.deepcopy(resolved.config),
            options=options,
            meta_info=meta,
            info=info,
            observers=observers,
            observed=observed,
            # An ingredient's command (data.describe) is a utility: no "No observers" warning (Sacred warns)
            warn_unobserved=any(c is command for c in self.commands.values()),
            root=self,
            ingredients=sources,
            root_logger=root_logger,
            run_logger=run_logger,
            captured_out_filter=self.captured_out_filter,
            pre_run_hooks=[hook for ing in sources for hook in ing.pre_run_hooks] if not command.builtin else (),
            post_run_hooks=[hook for ing in sources for hook in ing.post_run_hooks] if not command.builtin else (),
        )
        if command.builtin:
            run.main_function = functools.partial(command.function, self, run, *args)
        for option in self.additional_cli_options:  # Sacred applies them to the created run, before it starts
            value = (extra_options or {}).get(option.long_flag.replace("_", "-"))
            if value:
                option.apply(value, run)
        return run

    def _apply_option_hooks(self, options: Options, command_name: str | None,
                            update_tokens: Sequence[str] | None) -> Options:
        """Sacred's option hooks see the options dict as Sacred keys it and may change its flags."""
        record = options.as_record(command_name, update_tokens, redact=False)
        for hook in self.option_hooks:
            hook(options=record)
        known = set(Options.__dataclass_fields__)
        return Options.from_mapping({key: value for key, value in record.items() if key.startswith("--")
                                     and key.lstrip("-").replace("-", "_") in known})

    # -- shortcuts to the current run (Sacred's ex.log_scalar, ex.add_artifact, ex.info) -------------------
    def _running(self, what: str) -> Run:
        if self.current_run is None:
            raise RuntimeError(f"ex.{what} works only while a run is going on; call it from the main function "
                               f"or a captured function, or use _run.{what}")
        return self.current_run

    def log_scalar(self, name: str, value: Any, step: int | None = None) -> None:
        """Record a metric point of the current run."""
        self._running("log_scalar").log_scalar(name, value, step)

    def add_artifact(self, filename: str, name: str | None = None, metadata: Any = None,
                     content_type: str | None = None) -> str:
        """Store a file with the current run."""
        return self._running("add_artifact").add_artifact(filename, name, metadata, content_type)

    def add_resource(self, filename: str) -> None:
        """Record a file the current run reads."""
        self._running("add_resource").add_resource(filename)

    def open_resource(self, filename: str, mode: str = "r") -> Any:
        """Open a file and record it as a resource of the current run."""
        return self._running("open_resource").open_resource(filename, mode)

    @property
    def info(self) -> dict[str, Any]:
        """The current run's info dict (sent with every heartbeat)."""
        return self._running("info").info

    # -- commands and help -----------------------------------------------------------------------------------
    def commands_table(self) -> dict[str, Command]:
        """Every command by the name the command line uses: the user's first, then the built-in ones."""
        from labrun.cli.commands import BUILTIN_COMMANDS

        table = self.all_commands()
        for name, function in BUILTIN_COMMANDS.items():
            table.setdefault(name, Command(name, function, unobserved=True, builtin=True))
        return table

    def _find_command(self, name: str | None) -> Command:
        table = self.commands_table()
        if name is None:
            if self.default_command is None:
                raise CommandLineError(
                    f"experiment '{self.name}' has no main function; mark one with @ex.main or name a "
                    f"command: {', '.join(table)}")
            name = self.default_command
        if name not in table:
            raise CommandLineError(
                f"unknown command '{name}'{did_you_mean(name, table)}; commands: {', '.join(table)}. "
                f"Updates go after 'with': exp.py with {name}")
        return table[name]

    def experiment_info(self, name: str | None = None) -> ExperimentInfo:
        """The ``experiment`` part of the run record."""
        return {
            "name": name or self.name,
            "base_dir": self.base_dir,
            "mainfile": os.path.basename(self.mainfile) if self.mainfile else None,
            "sources": [],
            "dependencies": [],
            "repositories": [],
        }

    def provenance(self, enforce_clean: bool = False) -> dict[str, Any]:
        """Sources, git state, environment and host, gathered in parallel (docs/reproducibility.md)."""
        from labrun.provenance.gather import gather_provenance
        from labrun.provenance.git import enforce_clean as refuse_dirty
        from labrun.host_info import gather_additional, host_info_gatherers
        from labrun.provenance.notebook import notebook_sources

        extra = [path for ingredient in self.traverse() for path in ingredient.sources]
        record = gather_provenance(self.base_dir, self.mainfile, extra, self.save_git_info or enforce_clean,
                                    self.record_env)
        record["sources"] += notebook_sources(self.base_dir)
        declared = [f"{name}=={version}" for ing in self.traverse() for name, version in ing.package_dependencies]
        if declared:
            named = {entry.split("==")[0] for entry in declared}
            record["dependencies"] = sorted(declared + [d for d in record["dependencies"]
                                                        if d.split("==")[0] not in named])
        if self.additional_host_info or host_info_gatherers:
            record["host"].update(gather_additional(self.additional_host_info))
        if enforce_clean:
            refuse_dirty(record["repositories"])
        return record

    def help_text(self, prog: str) -> str:
        """The text of ``--help``: usage, commands, update syntax and options."""
        from labrun.cli.argv import options_section, usage_line

        table = self.commands_table()
        width = max(len(n) for n in table) + 12
        lines = [f"Usage:\n{usage_line(prog)}\n"]
        if self.doc and self.doc.strip():  # the script's docstring, where Sacred shows it
            lines.append(self.doc.strip() + "\n")
        doc = _first_line(self.commands[self.default_command].function) if self.default_command else ""
        lines.append(f"Experiment: {self.name}{' - ' + doc if doc else ''}\n")
        lines.append("Commands:")
        for name, cmd in table.items():
            label = f"{name} (default)" if name == self.default_command else name
            lines.append(f"  {label:<{width}} {_first_line(cmd.function)}".rstrip())
        lines.append(
            "\nUpdates after 'with':\n"
            "  key=value        a Python literal (1e-3, [1, 2], {'k': 1}, True, None); anything else is a string\n"
            "  a.b=1  a.0=5     a nested entry, a list element\n"
            "  a:={'k': 1}      replace a dict instead of merging into it\n"
            "  NAME             a named config (see print_named_configs), or a .json/.yaml/.yml config file\n")
        lines.append(options_section([o.spec for o in self.additional_cli_options]))
        return "\n".join(lines)

    def command_help(self, args: Sequence[str], prog: str) -> str:
        """``help [COMMAND]``: one command's signature and docstring, or the general help."""
        if not args:
            return self.help_text(prog)
        table = self.commands_table()
        name = args[0]
        if name not in table:
            raise CommandLineError(f"unknown command '{name}'{did_you_mean(name, table)}; commands: {', '.join(table)}")
        function = table[name].function
        if table[name].builtin:
            signature = " [PATH]" if name == "save_config" else ""
        else:
            signature = str(inspect.signature(function))
        doc = inspect.getdoc(function) or "(no docstring)"
        return f"{prog} {name}{signature}\n\n{doc}"


ConfigSpec = Union[Callable[..., Any], dict, str, "os.PathLike[str]"]


class FunctionExperiment(Experiment):
    """An Experiment made from one function by ``@experiment``. Calling it with config updates as keywords
    (``train(lr=0.5)``) runs a recorded run and returns its result; ``train.run(...)`` returns the Run."""

    def __init__(self, function: Callable[..., Any], name: str | None, ingredients: Sequence[Ingredient],
                 observers: Sequence[Any], config: ConfigSpec | Sequence[ConfigSpec] | None = None,
                 named_configs: dict[str, ConfigSpec] | Sequence[Callable[..., Any]] | None = None):
        super().__init__(name, ingredients, _caller_depth=3)
        filename = getattr(getattr(function, "__code__", None), "co_filename", "")
        if filename and os.path.exists(filename):
            self.mainfile = os.path.abspath(filename)
            self.base_dir = os.path.dirname(self.mainfile)
            if name is None:
                self.name = _default_name(self.mainfile)
        defaults = {
            p.name: p.default for p in inspect.signature(function).parameters.values()
            if p.default is not inspect.Parameter.empty and not p.name.startswith("_")
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        if defaults:
            self.config_layers.append(ConfigDict(defaults, name=f"defaults of {function.__name__}()"))
        specs: list[Any] = list(config) if isinstance(config, (list, tuple)) else [] if config is None else [config]
        self.config_layers.extend(self._layer(spec, "config") for spec in specs)
        if isinstance(named_configs, dict):
            for named, spec in named_configs.items():
                self._add_named(str(named), self._layer(spec, f"named config '{named}'"))
        else:
            for scope in named_configs or ():
                if not callable(scope):
                    raise ConfigError(f"named_configs takes a dict name -> (function, dict or file), or a list "
                                      f"of config functions named after themselves; got {scope!r} in the list")
                self._add_named(scope.__name__, ConfigScope(scope))
        self.observers.extend(observers)
        self._function = self.main(function)
        functools.update_wrapper(self, function)  # type: ignore[arg-type]

    def _layer(self, spec: ConfigSpec, what: str) -> ConfigLayer:
        """A config scope function, a dict, or a .json/.yaml file (beside the experiment's file if relative)."""
        if isinstance(spec, ConfigLayer):
            return spec
        if callable(spec):
            return ConfigScope(spec)
        if isinstance(spec, (dict, str, os.PathLike)):
            return self._load(spec if isinstance(spec, dict) else os.fspath(spec))
        raise ConfigError(f"{what} takes a config function, a dict or a .json/.yaml path, got {type(spec).__name__}")

    def __call__(self, *args: Any, **config_updates: Any) -> Any:
        """Run a recorded run with ``config_updates`` and return its result (what ``main`` returned)."""
        if args:
            raise TypeError(f"{self.name}(...) runs a recorded run: pass config entries as keywords, e.g. "
                            f"{self._function.__name__}(lr=0.5); to call the plain function use "
                            f"{self._function.__name__}.__wrapped__(...)")
        return self.run(config_updates=config_updates).result


@overload
def experiment(function: Callable[..., Any], *, name: str | None = None,
               config: ConfigSpec | Sequence[ConfigSpec] | None = None,
               named_configs: dict[str, ConfigSpec] | Sequence[Callable[..., Any]] | None = None,
               observers: Sequence[Any] = (), ingredients: Sequence[Ingredient] = ()) -> FunctionExperiment: ...


@overload
def experiment(function: None = None, *, name: str | None = None,
               config: ConfigSpec | Sequence[ConfigSpec] | None = None,
               named_configs: dict[str, ConfigSpec] | Sequence[Callable[..., Any]] | None = None,
               observers: Sequence[Any] = (),
               ingredients: Sequence[Ingredient] = ()) -> Callable[[Callable[..., Any]], FunctionExperiment]: ...


def experiment(function: Callable[..., Any] | None = None, *, name: str | None = None,
               config: ConfigSpec | Sequence[ConfigSpec] | None = None,
               named_configs: dict[str, ConfigSpec] | Sequence[Callable[..., Any]] | None = None,
               observers: Sequence[Any] = (), ingredients: Sequence[Ingredient] = ()) -> Any:
    """Decorator: make ``function`` the main of a new Experiment.

    Config layers, lowest first: the function's keyword defaults, then ``config`` (config scope functions,
    dicts or .json/.yaml files, in order; a scope may override a default and compute derived entries), then
    named configs (``with NAME``), then updates. Bare (``@experiment``) or with arguments. When the
    function's file runs as a script, the command line is parsed and the run starts at once, as with
    ``automain``: make it the last statement of the file.
    """
    def make(func: Callable[..., Any]) -> FunctionExperiment:
        ex = FunctionExperiment(func, name, ingredients, observers, config, named_configs)
        if func.__module__ == "__main__":
            ex.run_commandline()
        return ex

    return make(function) if function is not None else make


def configure_logging(level: str | None, logger: logging.Logger | None = None) -> logging.Logger:
    """The logger a run's messages go under, as in Sacred: ``logger`` when the experiment has one, else the
    root logger, given a handler with Sacred's format at INFO unless the program set up logging itself.
    ``-l LEVEL`` sets that logger's level."""
    root = logger
    if root is None:
        root = logging.getLogger()
        if not root.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
            root.addHandler(handler)
            root.setLevel(logging.INFO)
    if level is not None:
        value = int(level) if str(level).isdigit() else logging.getLevelName(str(level).upper())
        if not isinstance(value, int):
            raise CommandLineError(f"unknown log level '{level}'; use DEBUG, INFO, WARNING, ERROR or a number")
        root.setLevel(value)
    return root


def _default_name(mainfile: str | None) -> str:
    return os.path.splitext(os.path.basename(mainfile))[0] if mainfile else "experiment"


def _first_line(function: Callable[..., Any]) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.splitlines()[0] if doc else ""


class _ExperimentModule(types.ModuleType):
    """``labrun.experiment`` names both this module (as ``sacred.experiment`` does, so ``from labrun.experiment
    import Experiment`` works) and the ``@experiment`` decorator exported by ``labrun``. Importing a submodule
    binds its name on the package, so the module itself must be callable as the decorator."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return experiment(*args, **kwargs)


sys.modules[__name__].__class__ = _ExperimentModule
