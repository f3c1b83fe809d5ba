"""Observers by URL scheme: ``-o file://runs``, ``-m mongodb://...``, and schemes other packages add.

A third-party package registers a scheme through the entry-point group ``labrun.observers``: the entry
point's name is the scheme and its object a callable taking the URL and returning an observer. Backends are
imported only when a URL of theirs is used, so ``import labrun`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple

from labrun.errors import ObserverNotAvailableError
from labrun._util.redact import redact_url
from labrun._util.suggest import did_you_mean

ENTRY_POINT_GROUP = "labrun.observers"


class Backend(NamedTuple):
    """A built-in storage backend, described once: the command line, the registry and the docs read this."""

    title: str
    schemes: tuple[str, ...]  # URL schemes that select it (-o SCHEME://...)
    target: str  # "module:attribute.path" of a callable taking the URL
    extra: str | None  # the pip extra that installs what it needs
    flag: str  # its own option (-F, -m, --tensorboard, --mlflow), as Options names it
    to_url: Callable[[str], str]  # that option's value as an observer URL


def _file_url(folder: str) -> str:
    return folder if folder.startswith("file://") else f"file://{folder}"


def _tensorboard_url(logdir: str) -> str:
    return logdir if logdir.startswith("tensorboard://") else f"tensorboard://{logdir}"


def mongo_url(option: str) -> str:
    """Sacred's ``-m`` forms as a URL: a URL stays as it is, ``[host:port:]db[.prefix]`` becomes one."""
    if "://" in option:
        return option
    parts = option.split(":")
    if len(parts) == 1:
        host, port, db = "localhost", "27017", parts[0]
    elif len(parts) == 3:
        host, port, db = parts
    else:
        raise ObserverNotAvailableError(
            f"-m/--mongo-db takes a mongodb:// URL or [host:port:]db_name[.prefix], got '{redact_url(option)}'")
    db, _, prefix = db.partition(".")
    query = f"?collection_prefix={prefix}" if prefix else ""
    return f"mongodb://{host}:{port}/{db or 'sacred'}{query}"


def mlflow_url(uri: str) -> str:
    """``--mlflow``'s tracking URI as an observer URL: ``http://h:5000`` -> ``mlflow+http://h:5000``; a bare
    folder is a file store."""
    if uri.startswith("mlflow+"):
        return uri
    if "://" not in uri:
        import os

        return f"mlflow+file://{os.path.abspath(uri)}"
    return f"mlflow+{uri}"


BACKENDS: tuple[Backend, ...] = (
    Backend("file store", ("file",), "labrun.observers.file_storage:FileStorageObserver.from_url", None,
            "--file-storage", _file_url),
    Backend("MongoDB", ("mongodb", "mongodb+srv"), "labrun.observers.mongo:MongoObserver.from_url", "mongo",
            "--mongo-db", mongo_url),
    Backend("TensorBoard", ("tensorboard",), "labrun.observers.tensorboard:TensorBoardObserver.from_url",
            "tensorboard", "--tensorboard", _tensorboard_url),
    Backend("MLflow", ("mlflow+file", "mlflow+sqlite", "mlflow+http", "mlflow+https"),
            "labrun.observers.mlflow:MlflowObserver.from_url", "mlflow", "--mlflow", mlflow_url),
)
BUILTIN_SCHEMES: dict[str, Backend] = {scheme: backend for backend in BACKENDS for scheme in backend.schemes}


def url_scheme(url: str) -> str:
    scheme, sep, _rest = url.partition("://")
    if not sep or not scheme:
        raise ObserverNotAvailableError(
            f"observer URL '{redact_url(url)}' has no scheme; write it as SCHEME://..., e.g. file://runs, "
            f"mongodb://localhost:27017/sacred, tensorboard://logs or mlflow+file:///abs/mlruns")
    return scheme.lower()


def _third_party_schemes() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def observer_factory(url: str) -> Callable[[str], Any]:
    """The callable that builds the observer for ``url``; a clear error when its backend is missing."""
    scheme = url_scheme(url)
    backend = BUILTIN_SCHEMES.get(scheme)
    if backend is None:
        third_party = _third_party_schemes()
        if scheme not in third_party:
            known = sorted(set(BUILTIN_SCHEMES) | set(third_party))
            raise ObserverNotAvailableError(
                f"no observer is registered for '{scheme}://'{did_you_mean(scheme, known)}; known schemes: "
                f"{', '.join(known)}. A package adds one through the entry-point group '{ENTRY_POINT_GROUP}'")
        return third_party[scheme].load()
    module_name, _, attr_path = backend.target.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            raise ObserverNotAvailableError(
                f"the {backend.title} observer ('{scheme}://') is not part of this labrun installation "
                f"(module {module_name} is missing); upgrade labrun") from None
        hint = f"pip install 'labrun[{backend.extra}]'" if backend.extra else "reinstall labrun"
        raise ObserverNotAvailableError(
            f"the {backend.title} observer ('{scheme}://') needs the package '{exc.name}', which is not "
            f"installed: {hint}") from None
    for attr in attr_path.split("."):
        target = getattr(target, attr)
    return target


def create_observer(url: str) -> Any:
    """An observer for ``url``."""
    return observer_factory(url)(url)


def observer_urls(options: Any) -> list[str]:
    """Every observer URL the run options ask for: each backend's own option (-F, -m, --tensorboard,
    --mlflow, in that order), then each -o."""
    urls = []
    for backend in BACKENDS:
        value = getattr(options, backend.flag[2:].replace("-", "_"))
        if value:
            urls.append(backend.to_url(value))
    return urls + list(options.observer or [])
