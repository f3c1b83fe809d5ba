"""What can be checked about a store's target before a run starts, without waiting on a network: a URL's
hosts and ports, and a folder that can be created and written. A store that is only unreachable is not
refused here: the run goes on and its journal keeps everything until the store answers."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from labrun.errors import LabrunError


class StoreTargetError(LabrunError, ValueError):
    """A store's URL or folder that can never work (bad syntax, bad port, a folder that cannot be written)."""


def check_hosts(hosts: str, url_for_message: str, example_port: int = 27017) -> None:
    """``host[:port][,host[:port]...]``: each host named, each port a number from 1 to 65535."""
    if not hosts or not hosts.rpartition("@")[2]:
        raise StoreTargetError(f"'{url_for_message}' names no host; write e.g. mongodb://127.0.0.1:27017/db")
    for host in hosts.rpartition("@")[2].split(","):
        name, colon, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not colon:
            name, port = host, ""
        if not name:
            raise StoreTargetError(f"'{url_for_message}' has an empty host; write e.g. 127.0.0.1:{example_port}")
        if colon and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise StoreTargetError(f"'{url_for_message}' has the port '{port}', which is not a number from 1 to "
                                   f"65535; write e.g. {name}:{example_port}")


def check_http_url(url: str, url_for_message: str) -> None:
    """An http(s) URL with a host and a valid port."""
    parts = urlsplit(url)
    check_hosts(parts.netloc, url_for_message, 443 if parts.scheme == "https" else 5000)


def check_writable_folder(path: str, what: str) -> None:
    """The folder exists, or its nearest existing parent is a folder; and a file can be created there (tried,
    then removed). Nothing is left behind: a store refused later (``-e``) has created no folder."""
    import tempfile

    folder = os.path.abspath(path)
    blocker = folder
    while not os.path.exists(blocker):
        blocker = os.path.dirname(blocker)
    if not os.path.isdir(blocker):
        raise StoreTargetError(f"{what} '{path}' cannot be created: '{blocker}' is a file, not a folder; choose "
                               f"another folder")
    try:
        with tempfile.NamedTemporaryFile(dir=blocker, prefix=".labrun-write-check-"):
            pass
    except OSError as exc:
        raise StoreTargetError(f"{what} '{path}' cannot be written ({exc.strerror or exc}); choose a folder you "
                               f"can write, e.g. ./runs") from None
