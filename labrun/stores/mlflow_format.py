"""MLflow observer URLs (``mlflow+file://``, ``mlflow+sqlite://``, ``mlflow+http(s)://``) and the tracking
URIs they name: shared by the MLflow observer and the MLflow reader."""

from __future__ import annotations

import os

from labrun._util.redact import redact_url


def tracking_uri(url: str) -> str:
    """The MLflow tracking URI an ``mlflow+...`` observer URL names."""
    scheme, _, rest = url.partition("://")
    kind = scheme.removeprefix("mlflow+")
    # mlflow+file:///abs and mlflow+file:////abs both name /abs; a path without a leading / is relative.
    path = "/" + rest.lstrip("/") if rest.startswith("/") else os.path.abspath(rest)
    if kind == "file":
        return f"file://{path}"
    if kind == "sqlite":
        return f"sqlite:///{path}"
    if kind in ("http", "https"):
        return f"{kind}://{rest}"
    raise ValueError(f"MLflow observer URLs are mlflow+file:///abs/mlruns, mlflow+sqlite:///abs/mlflow.db or "
                     f"mlflow+http://host:port, got '{redact_url(url)}'")
