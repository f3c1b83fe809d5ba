"""Keeping secrets out of records, logs and error messages."""

from __future__ import annotations

import re
from typing import Any

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^@/?#]*)@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|pass|pwd|token|secret|key|sig|signature)=)[^&#]*")


def redact_url(url: str) -> str:
    """``mongodb://user:pw@host/db?token=x`` -> ``mongodb://user:***@host/db?token=***``."""
    def _userinfo(m: re.Match) -> str:
        user, sep, _password = m.group("userinfo").partition(":")
        return f"{m.group('scheme')}{user}{':***' if sep else ''}@"

    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(_userinfo, url))


class RedactingFilter:
    """A logging filter that redacts credentials in URLs anywhere in a record's message, for libraries that
    echo the URL they were given (MLflow's and urllib3's messages)."""

    def filter(self, record: Any) -> bool:
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def guard_library_logs(*names: str) -> None:
    """Redact credentials in what the loggers ``names`` print (once per logger)."""
    import logging

    for name in names:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())


def without_credentials(url: str) -> str:
    """The URL with its whole user-info removed (a git remote's user name is often a token)."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(lambda m: m.group("scheme"), url))


# File names that say they hold secrets: never copied into a store (docs/reproducibility.md). The substring
# patterns do not apply to code files (a tokenizer.py is code, not a token); the others apply to every file.
SECRET_FILE_PATTERNS = (".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "*.jks",
                        "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", "_netrc", ".pypirc",
                        ".git-credentials", ".npmrc", ".htpasswd", "*.kdbx")
SECRET_NAME_PARTS = ("*credential*", "*secret*", "*token*", "*password*", "*passwd*", "*apikey*", "*api_key*")
CODE_SUFFIXES = (".py", ".pyi", ".pyx", ".ipynb")
SECRET_VARIABLE = re.compile(r"(?i)secret|token|passw|pwd|credential|(^|_)key($|_)|apikey|private")


def looks_secret_file(path: str) -> bool:
    """Whether a file's name says it holds secrets (default patterns plus ``$LABRUN_SECRET_FILES``)."""
    import fnmatch
    import os

    from labrun._util.env_vars import SECRET_FILES_ENV

    name = os.path.basename(path).lower()
    extra = [p.strip().lower() for p in os.environ.get(SECRET_FILES_ENV, "").split(",") if p.strip()]
    patterns = [*SECRET_FILE_PATTERNS, *extra]
    if not name.endswith(CODE_SUFFIXES):
        patterns += SECRET_NAME_PARTS
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(path.lower(), p) for p in patterns)


def looks_secret_variable(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret (AWS_SECRET_ACCESS_KEY, HF_TOKEN, ...)."""
    return bool(SECRET_VARIABLE.search(name))
