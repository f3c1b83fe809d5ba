"""The MongoDB layout that the observer writes and the reader reads (docs/observers/mongodb.md).

Kept apart from both so they agree on one definition: where a URL points, how keys MongoDB refuses are
encoded, and how a metric split over several documents is put back together. Imports nothing heavy.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode

DEFAULT_DB = "sacred"  # Sacred's default, so existing Omniboard set-ups find the runs
OWN_OPTIONS = ("collection_prefix", "collection")  # URL options that are labrun's, not the driver's


class MongoLocation(NamedTuple):
    """Where runs go: the URL the driver gets, the database, the collection names, and one URL saying all
    of it (what ``labrun sync`` rebuilds the observer from)."""

    url: str
    client_url: str
    db_name: str
    runs: str
    metrics: str
    points: str
    system: str  # system/* metrics: out of ``metrics``, which Omniboard plots in full by default


def omniboard_name(artifact: str) -> str:
    """An artifact's name as Omniboard's routes take it: one path segment (``plots/cm.png`` ->
    ``plots__cm.png``); the run document keeps the real name beside it, as ``path``."""
    return artifact.replace("/", "__")


def parse_mongo_url(url: str, db_name: str | None = None, collection: str = "runs",
                    collection_prefix: str = "") -> MongoLocation:
    """``mongodb[+srv]://[user:pw@]hosts/[db][?options]``: the database from the path (default ``sacred``).

    ``collection_prefix`` (also a URL option, as ``-m db.prefix`` writes it) makes the collections
    ``<prefix>_runs`` and ``<prefix>_metrics``, as in Sacred; ``collection`` (also a URL option) renames
    the runs collection.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("mongodb", "mongodb+srv"):
        raise ValueError("a MongoDB URL starts with mongodb:// or mongodb+srv://")
    rest, _, query = rest.partition("?")
    hosts, _, path = rest.partition("/")
    from labrun._util.redact import redact_url
    from labrun.stores.targets import check_hosts

    check_hosts(hosts, redact_url(url))
    options = parse_qsl(query, keep_blank_values=True)
    own = {k: v for k, v in options if k in OWN_OPTIONS}
    driver_options = [(k, v) for k, v in options if k not in OWN_OPTIONS]
    prefix = collection_prefix or own.get("collection_prefix", "")
    collection = own.get("collection", collection)
    db_name = db_name or unquote(path) or DEFAULT_DB
    # The path stays in the driver's URL: it is also the database that credentials are checked against.
    client_url = f"{scheme}://{hosts}/{path}" + (f"?{urlencode(driver_options)}" if driver_options else "")
    own_options = [("collection_prefix", prefix)] if prefix else []
    own_options += [("collection", collection)] if collection != "runs" else []
    full_options = driver_options + own_options
    url = f"{scheme}://{hosts}/{quote(db_name)}" + (f"?{urlencode(full_options)}" if full_options else "")
    runs = f"{prefix}_{collection}" if prefix else collection
    metrics = f"{prefix}_metrics" if prefix else "metrics"
    points = f"{prefix}_metric_points" if prefix else "metric_points"
    system = f"{prefix}_system_metrics" if prefix else "system_metrics"
    return MongoLocation(url, client_url, db_name, runs, metrics, points, system)


def url_options(url: str) -> set[str]:
    """The option names a URL sets, lower-cased (the driver treats them case-insensitively)."""
    return {k.lower() for k, _ in parse_qsl(url.partition("?")[2], keep_blank_values=True)}


# -- keys ---------------------------------------------------------------------------------------------------
# MongoDB refuses keys with "." and keys starting with "$". Such keys are percent-encoded, and so is "%"
# itself, which makes the encoding reversible: "val.acc" <-> "val%2Eacc", "$x" <-> "%24x", "5%" <-> "5%25".
def encode_key(key: str) -> str:
    if "%" in key or "." in key or key.startswith("$"):
        key = key.replace("%", "%25").replace(".", "%2E")
        if key.startswith("$"):
            key = "%24" + key[1:]
    return key


def decode_key(key: str) -> str:
    return unquote(key) if "%" in key else key


def encode_keys(value: Any) -> Any:
    """``value`` with every dict key, at any depth, made acceptable to MongoDB."""
    return _map_keys(value, encode_key)


def decode_keys(value: Any) -> Any:
    """The inverse of :func:`encode_keys`."""
    return _map_keys(value, decode_key)


def _map_keys(value: Any, change: Any) -> Any:
    if isinstance(value, dict):
        return {change(str(k)): _map_keys(v, change) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_keys(v, change) for v in value]
    return value


# -- metrics ------------------------------------------------------------------------------------------------
# One document per (run, metric) in ``metrics``, as Sacred writes it: {run_id, name, steps, values, timestamps}
# plus ``count`` (the metric's points) and ``last_time``. It holds every point while there are at most
# MAX_POINTS_PER_DOCUMENT. Past that it holds a summary of the whole curve (``downsampled: true``; first and
# last points, each bucket's lowest and highest, SUMMARY_BUCKETS buckets), so Omniboard, which keys the
# documents by name, plots the whole curve; every point is then in ``metric_points``, in parts of at most
# MAX_POINTS_PER_DOCUMENT: {run_id, name, part: 0, 1, ..., steps, values, timestamps, count}.
# labrun before 0.4 split a long metric over several ``metrics`` documents with part = 0, 1, ...; the readers
# still join those.
MAX_POINTS_PER_DOCUMENT = 50_000  # ~2.4 MB of BSON: a $push rewrites the document, so its size bounds each write
SUMMARY_BUCKETS = 4096  # at most 16,384 points (~0.8 MB of BSON) in a downsampled metric's document
FIELDS = ("steps", "values", "timestamps")


def join_parts(documents: Iterable[dict[str, Any]]) -> dict[str, dict[str, list]]:
    """Metric documents (or full-resolution parts) of one run, in any order, as ``{name: {"steps", "values",
    "timestamps"}}``."""
    parts: dict[str, list[dict[str, Any]]] = {}
    for doc in documents:
        parts.setdefault(doc["name"], []).append(doc)
    joined = {}
    for name, docs in parts.items():
        docs.sort(key=lambda d: d.get("part", 0))
        joined[name] = {field: [x for d in docs for x in d.get(field, [])] for field in FIELDS}
    return joined
